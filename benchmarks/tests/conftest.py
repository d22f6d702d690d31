from tests.conftest import tfds_dir  # noqa: F401  (the session's TFDS folder, shared)
