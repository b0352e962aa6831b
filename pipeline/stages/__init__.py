"""The worker's stages: plain classes that turn consumed records into a typed outcome.

Each stage takes explicit inputs (``Record``s, settings, a model) and returns what should happen next:
messages to send, documents to write, records to dead-letter with a reason. It never touches Faust,
Kafka or Elasticsearch itself, so a unit test drives it with plain records and no servers. The Faust
agents in ``pipeline/app.py`` only wire stages to topics: they turn events into records, run the stage,
carry out its outcome and release the events for commit once it is done.
"""
