"""Where bars come from and where features go, looked up by URL scheme.

- `bqx.connect.schemes`: `scheme_of`, `is_database_url`, `is_s3_url`, the `Registry` of scheme -> factory.
- `bqx.connect.sources`: `BarSource`, `IngestOptions`, `register_source`, `open_source` (files, postgresql).
- `bqx.connect.sinks`: `FeatureSink`, `register_sink`, `open_sink` (file, s3, postgresql); and
  `StreamSink`, `register_stream_sink`, `open_stream_sink` for live features (stdio, file).

Adding a source or a sink is one module and one registration (docs/CONTRIBUTING.md).
"""

from bqx.connect.schemes import is_database_url, is_s3_url, scheme_of
from bqx.connect.sinks import FeatureSink, StreamSink, open_sink, open_stream_sink, register_sink, register_stream_sink
from bqx.connect.sources import BarSource, IngestOptions, open_source, register_source

__all__ = ["BarSource", "FeatureSink", "IngestOptions", "StreamSink", "is_database_url", "is_s3_url", "open_sink",
           "open_source", "open_stream_sink", "register_sink", "register_source", "register_stream_sink", "scheme_of"]
