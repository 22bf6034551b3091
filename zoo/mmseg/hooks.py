"""``NonFiniteLossHook``: stop at the first non-finite loss or gradient, with a report."""

from __future__ import annotations

import math
from typing import Any

import torch
from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS
from torch import Tensor


class NonFiniteLossError(RuntimeError):
    """Raised by :class:`NonFiniteLossHook`; ``report`` holds what it saw."""

    def __init__(self, message: str, report: dict[str, Any]):
        super().__init__(message)
        self.report = report


def tensor_stats(value: Any) -> dict[str, Any] | None:
    """min / max / mean / non-finite count of a tensor (or of a list of tensors, stacked)."""
    if isinstance(value, list | tuple) and value and all(isinstance(v, Tensor) for v in value):
        value = torch.cat([v.detach().flatten().float() for v in value])
    if not isinstance(value, Tensor) or value.numel() == 0:
        return None
    value = value.detach().float()
    finite = value[torch.isfinite(value)]
    return {
        "shape": list(value.shape),
        "non_finite": int(value.numel() - finite.numel()),
        "min": finite.min().item() if finite.numel() else math.nan,
        "max": finite.max().item() if finite.numel() else math.nan,
        "mean": finite.mean().item() if finite.numel() else math.nan,
    }


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stops training on the first non-finite loss (before its backward) or gradient (before
    the optimizer step), so no parameter is ever updated with NaN or inf.

    It raises :class:`NonFiniteLossError` whose message (also logged) names the iteration, the
    loss terms and their values, the parameters with non-finite gradients, and statistics of
    the batch's inputs and of the decode head's prediction.

    Args:
        check_grads: also check every gradient before the optimizer step. Off for mixed
            precision with a loss scaler, which expects and skips inf gradients itself.
        max_names: how many offending parameters to name.

    In a distributed run each process checks its own loss and gradients (gradients are
    already averaged, so all processes stop together on a non-finite gradient).
    """

    priority = "VERY_HIGH"

    def __init__(self, check_grads: bool = True, max_names: int = 10):
        self.check_grads = check_grads
        self.max_names = max_names
        self._terms: dict[str, Any] = {}
        self._inputs: dict[str, Any] | None = None
        self._prediction: dict[str, Any] | None = None
        self._iter = 0

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        parse_losses = model.parse_losses

        def recording_parse_losses(losses):
            self._terms = {k: v.detach() if isinstance(v, Tensor) else v for k, v in losses.items()}
            return parse_losses(losses)

        model.parse_losses = recording_parse_losses
        head = getattr(model, "decode_head", None)
        if isinstance(head, torch.nn.Module):
            head.register_forward_hook(self._record_prediction)

        wrapper = runner.optim_wrapper
        if not (hasattr(wrapper, "backward") and hasattr(wrapper, "step")):
            raise TypeError(
                f"NonFiniteLossHook needs one optimizer wrapper with backward() and step(); "
                f"got {type(wrapper).__name__}"
            )
        backward, step = wrapper.backward, wrapper.step

        def checked_backward(loss, **kwargs):
            if not torch.isfinite(loss.detach()).all():
                self._stop(runner, f"non-finite loss {loss.detach().float().tolist()}", {})
            return backward(loss, **kwargs)

        def checked_step(**kwargs):
            if self.check_grads:
                bad = [
                    name
                    for name, p in model.named_parameters()
                    if p.grad is not None and not torch.isfinite(p.grad).all()
                ]
                if bad:
                    self._stop(
                        runner,
                        f"non-finite gradients in {len(bad)} parameter(s)",
                        {"parameters": bad[: self.max_names]},
                    )
            return step(**kwargs)

        wrapper.backward, wrapper.step = checked_backward, checked_step

    def _record_prediction(self, module, args, output) -> None:
        self._prediction = tensor_stats(output)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._iter = runner.iter + 1
        self._prediction = None
        inputs = data_batch.get("inputs") if isinstance(data_batch, dict) else None
        self._inputs = tensor_stats(inputs)

    def _stop(self, runner, what: str, extra: dict[str, Any]) -> None:
        terms = {
            name: value.float().tolist() if isinstance(value, Tensor) else value
            for name, value in self._terms.items()
        }
        bad_terms = [
            name
            for name, value in self._terms.items()
            if isinstance(value, Tensor) and not torch.isfinite(value.float()).all()
        ]
        report = {
            "iteration": self._iter,
            "problem": what,
            "non_finite_loss_terms": bad_terms,
            "loss_terms": terms,
            "inputs": self._inputs,
            "prediction": self._prediction,
            **extra,
        }
        lines = [f"NonFiniteLossHook: {what} at iteration {self._iter}; training stopped."]
        lines.append(f"  non-finite loss terms: {', '.join(bad_terms) or 'none'}")
        lines += [f"  {name} = {value}" for name, value in terms.items()]
        if "parameters" in extra:
            lines.append(f"  parameters: {', '.join(extra['parameters'])}")
        lines.append(f"  inputs: {self._inputs}")
        lines.append(f"  prediction (decode head output): {self._prediction}")
        message = "\n".join(lines)
        runner.logger.error(message)
        raise NonFiniteLossError(message, report)


@HOOKS.register_module()
class SafetensorsCheckpointHook(Hook):
    """Writes the model's weights as ``<work_dir>/iter_<N>.safetensors`` at the end of
    training (and every ``interval`` iterations if given): a checkpoint that loads without
    unpickling (``tools/test.py``, ``zoo publish``). Rank 0 only."""

    priority = "LOW"

    def __init__(self, interval: int = -1):
        self.interval = interval

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.interval > 0 and self.every_n_train_iters(runner, self.interval):
            self._save(runner)

    def after_train(self, runner) -> None:
        self._save(runner)

    @master_only
    def _save(self, runner) -> None:
        from safetensors.torch import save_file

        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        path = f"{runner.work_dir}/iter_{runner.iter}.safetensors"
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, path, metadata={"iteration": str(runner.iter)})
        runner.logger.info(f"SafetensorsCheckpointHook: saved {path}")
