"""LLM judges for focal utterances: ``local`` (the run's model), ``together`` and ``google``.

Every judge gets the same content (`judge_prompt`): the scenario's private facts, the dialogue so
far, the utterance judged and the scenario's question. It answers with a ``VERDICT:`` line that
`parsing.parse_verdict` reads; an answer it cannot read is ``ambiguous``, with the raw text kept
and ``JudgeVerdict.error`` saying why. Decoding is deterministic (greedy / temperature 0).

Remote judges (see `remote`):

- the key comes from ``TOGETHER_API_KEY`` / ``GOOGLE_API_KEY``; a missing key stops the run
  before anything starts, and a key the API rejects stops it before the model loads (exit 2);
- ``DECEPTION_TOGETHER_MODEL``, ``DECEPTION_TOGETHER_BASE_URL``, ``DECEPTION_GOOGLE_MODEL``,
  ``DECEPTION_GOOGLE_BASE_URL``, ``DECEPTION_JUDGE_TIMEOUT``, ``DECEPTION_JUDGE_MAX_TRIES`` and
  ``DECEPTION_JUDGE_CONCURRENCY`` override the defaults, and ``--judge-model``, ``--judge-url`` or
  ``components: {evaluator: {together: {...}}}`` in a ``--config`` file override those; the values
  as resolved are recorded in ``config.json`` and ``meta.json``;
- HTTP 408/429/5xx, timeouts and dropped connections are retried with exponential backoff; if a
  call still fails mid-run, that utterance is labelled ``ambiguous`` with ``judge_error`` set, a
  warning is logged, and the run goes on (its activations are not lost; re-judge later);
- the key is sent only in a header and is scrubbed from every error, log line and verdict.

This package imports nothing heavy; the plugin registry loads each judge class by name.
"""
