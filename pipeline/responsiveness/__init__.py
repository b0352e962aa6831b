"""Agency responsiveness: which complaints an agency's official accounts answered, how fast, and what is
overdue (official accounts, business-hours clock, the linking stage, the agent wiring, the report)."""
