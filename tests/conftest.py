"""Shared test settings."""
import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Tiny models are fastest single-threaded, and 2 threads crawl when another job holds a core."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def pytest_collection_modifyitems(items):
    """The end-to-end tests first: they are the longest chain, so a parallel run (`make test` uses
    pytest-xdist) starts them at once and fits every other test beside them."""
    items.sort(key=lambda item: item.path.name != "test_workflow.py")

