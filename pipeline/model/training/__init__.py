"""Fine-tuning the encoder with the sentiment head, split by concept so that one part changes alone.

- ``config``: :class:`FinetuneConfig`, every choice of a run, validated (what ``pantau model train --epochs``
  fills in, and what ``pantau_model.json`` records as ``finetune``);
- ``batching``: token ids, padded batches, the epoch's batch order and optional sampling balanced by domain;
- ``classifier``: the encoder + head module, its optimizer groups and schedule, the starting head;
- ``targets``: distillation targets (teachers' probabilities and embeddings, cached);
- ``checkpoints``: the run's identity, resumable checkpoints and the best weights;
- ``loop``: the training steps and validation scoring;
- ``storage``: how the trained encoder is written (int8 rows beside the source's 4-bit blocks, ...) and the
  model directory around it;
- ``finetune``: :func:`finetune_sentiment`, which puts them together;
- ``soup``: :func:`make_soup`, one model from the mean of several runs' trained weights, written and
  calibrated as a run's.

Nothing here is imported by the worker (tests/unit/test_runtime_imports.py).
"""
