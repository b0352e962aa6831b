"""Where raw posts come from: files today; platform connectors plug in here."""
