"""seapo's forwards keep cuDNN's attention kernel out, and give the setting back (docs/gpu.md)."""

import pytest
import torch

from seapo.models.attention import without_cudnn_attention


@pytest.mark.parametrize("before", [True, False])
def test_cudnn_attention_is_off_inside_and_restored_after(before):
    torch.backends.cuda.enable_cudnn_sdp(before)
    try:
        with without_cudnn_attention():
            assert not torch.backends.cuda.cudnn_sdp_enabled()
        assert torch.backends.cuda.cudnn_sdp_enabled() is before
        with pytest.raises(RuntimeError), without_cudnn_attention():
            raise RuntimeError("a failed forward")
        assert torch.backends.cuda.cudnn_sdp_enabled() is before  # restored on an error too
    finally:
        torch.backends.cuda.enable_cudnn_sdp(True)
