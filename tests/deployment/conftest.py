"""One deployment per broker, shared by the tests of a module (starting one takes ~30 s)."""

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.deployment.cluster import Deployment

NEEDED = ("bwrap", "nginx", "openssl", "redis-server")


def _missing(broker: str) -> list[str]:
    needed = NEEDED + (("rabbitmq-server", "rabbitmqctl") if broker == "rabbitmq" else ())
    return [program for program in needed if shutil.which(program) is None]


@pytest.fixture(scope="module", params=["redis", "rabbitmq"])
def deployment(request):
    """The whole deployment (proxy, web, two worker hosts and the shared services) on ``request.param``."""
    missing = _missing(request.param)
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (./pitlane test installs them as root)")
    workdir = Path(tempfile.mkdtemp(prefix=f"pitlane-deploy-{request.param}-"))
    deployment = Deployment(request.param, workdir)
    try:
        deployment.start()
        yield deployment
    except BaseException:
        print(deployment.logs())
        raise
    finally:
        deployment.stop()
        shutil.rmtree(workdir, ignore_errors=True)
