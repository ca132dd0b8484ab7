from tests.udata_server.fixture import udata_server  # noqa: F401
