"""What the transfer pool's fork server imports once (``procs.process_pool(
preload=...)``): TensorFlow, quietly and not started, and the modules a
transfer job runs. Each job's worker is then a fork of that server and
starts at once, where a spawned worker spent about 4 s of CPU importing
(22 workers in the whole graph, docs/performance.md). Importing this module
only imports: no thread, no TensorFlow op (forking after either is unsafe).
"""

from taskonomy_tf.console import quiet_import

quiet_import()

import taskonomy_tf.transfer.grid  # noqa: E402, F401
import taskonomy_tf.transfer.runner  # noqa: E402, F401
