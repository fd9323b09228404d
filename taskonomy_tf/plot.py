"""``python -m taskonomy_tf.plot``: the figures command, served by ``taskonomy_tf.viz``
(``python -m taskonomy_tf.viz``); this name is kept for the commands in the docs."""

import sys

from taskonomy_tf.viz.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
