from tests.conftest import tfds_dir, tiny_run  # noqa: F401  (the session's TFDS folder and tiny run, shared)
