"""The nano model shared by the model-side reliability cases (test_requests.py, test_load_checks.py)."""

import pytest
import torch

from mimo_edu.model import MIMO, build_mimo


@pytest.fixture(scope="module")
def nano() -> MIMO:
    torch.manual_seed(0)
    return build_mimo("nano").eval()

