"""Early stopping for a multi-objective search: stop a trial only when cheaper trials beat it.

Accuracy-only schedulers (ASHA, median stopping) compare every trial against the best accuracies
seen at the same epoch, so they kill small models first, and small models are exactly what a
search for the accuracy/cost front needs. Both rules here rank a trial against the others *at the
same epoch* on accuracy **and** cost, so the low-cost end of the front keeps its candidates:

- :class:`HalvingRule` (the default): multi-objective successive halving. At each rung epoch
  (``min_epoch``, ``min_epoch·eta``, …) a trial goes on only if it is in the best ``1/eta`` of the
  trials that reached that rung, ranked by non-dominated sorting of (accuracy, costs). It saves
  nearly half the epochs, and the cheapest trials are on the first front by construction.
- :class:`DominanceRule`: stop a trial only when enough others are clearly more accurate at a cost
  no higher than its own. Gentler (it saves less), for searches with few trials.

:class:`ParetoStopping` is the pure bookkeeping (no Ray); :class:`ParetoStoppingScheduler` plugs
it into Ray Tune as a trial scheduler.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from blocknas.search.hypervolume import non_dominated

if TYPE_CHECKING:
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.experiment import Trial


@dataclass(frozen=True)
class _Record:
    accuracy: float
    costs: tuple[float, ...]


@dataclass(frozen=True)
class DominanceRule:
    """When a trial counts as dominated, and how much domination stops it.

    ``min_epoch``: no decision before this epoch (early epochs are too noisy to rank models).
    ``min_dominators``: how many dominating trials are needed (one lucky run must not kill).
    ``cost_tolerance``: a dominator may cost up to this fraction more than the trial, in every
    cost (costs of near-identical architectures differ a little; they are still comparable).
    ``margin``: a dominator must be at least this much more accurate (ties and noise don't count).
    """

    min_epoch: int = 2
    min_dominators: int = 3
    cost_tolerance: float = 0.1
    margin: float = 0.01

    def __post_init__(self) -> None:
        min_epoch, min_dominators = self.min_epoch, self.min_dominators
        cost_tolerance, margin = self.cost_tolerance, self.margin
        if not min_epoch >= 1:
            raise ValueError(f"min_epoch must be at least 1, got {min_epoch=}")
        if not min_dominators >= 1:
            raise ValueError(f"min_dominators must be at least 1, got {min_dominators=}")
        if not cost_tolerance >= 0:  # `not >=` also rejects NaN
            raise ValueError(f"cost_tolerance must be >= 0, got {cost_tolerance=}")
        if not margin >= 0:
            raise ValueError(f"margin must be >= 0, got {margin=}")

    def judged_at(self, epoch: int, planned: int | None) -> bool:
        """Every epoch from ``min_epoch`` on is a decision point."""
        return epoch >= self.min_epoch

    def dominators(self, trial_id: str, at_epoch: dict[str, _Record]) -> int:
        """How many other records at this epoch dominate ``trial_id``'s."""
        mine = at_epoch.get(trial_id)
        if mine is None:
            return 0
        need = mine.accuracy + self.margin
        caps = [c * (1.0 + self.cost_tolerance) for c in mine.costs]
        return sum(
            1
            for other_id, other in at_epoch.items()
            if other_id != trial_id
            and other.accuracy >= need
            and all(oc <= cap for oc, cap in zip(other.costs, caps, strict=True))
        )

    def stops(self, trial_id: str, at_epoch: dict[str, _Record]) -> bool:
        return self.dominators(trial_id, at_epoch) >= self.min_dominators


@dataclass(frozen=True)
class HalvingRule:
    """Multi-objective successive halving (asynchronous, as ASHA).

    ``min_epoch``: the first rung; later rungs are ``min_epoch·eta^k`` before the planned length.
    ``eta``: at each rung the best ``1/eta`` of the trials that reached it go on.
    ``min_trials``: a rung judges only once this many trials reached it (the first ones go on).
    Ranking: non-dominated sorting of (accuracy ↑, every cost ↓); within a front, more accurate
    first. A trial is compared with every trial that reached the rung so far, finished or not.
    """

    min_epoch: int = 1
    eta: float = 2.5  # chosen by replay on full runs: ~45% of epochs saved, <1% hypervolume lost
    min_trials: int = 2

    def __post_init__(self) -> None:
        if not self.min_epoch >= 1:
            raise ValueError(f"min_epoch must be at least 1, got min_epoch={self.min_epoch}")
        if not self.eta > 1:
            raise ValueError(f"eta must be > 1 (keep 1/eta at each rung), got eta={self.eta}")
        if not self.min_trials >= 2:
            raise ValueError(f"min_trials must be at least 2, got min_trials={self.min_trials}")

    def rungs(self, planned: int | None, limit: int = 10_000) -> list[int]:
        """The rung epochs: ``min_epoch·eta^k``, below ``planned`` (when it is known)."""
        out: list[int] = []
        r = float(self.min_epoch)
        while round(r) < (planned if planned is not None else limit):
            if not out or round(r) > out[-1]:
                out.append(round(r))
            r *= self.eta
        return out

    def judged_at(self, epoch: int, planned: int | None) -> bool:
        return epoch in self.rungs(planned, limit=epoch + 1)

    def stops(self, trial_id: str, at_epoch: dict[str, _Record]) -> bool:
        """Whether ``trial_id`` falls outside the best ``1/eta`` at this rung."""
        n = len(at_epoch)
        if n < self.min_trials or trial_id not in at_epoch:
            return False
        ids = list(at_epoch)
        losses = np.array([[-r.accuracy, *r.costs] for r in at_epoch.values()])
        rank = np.zeros(n, dtype=int)
        left = np.arange(n)
        level = 0
        while len(left):
            front = non_dominated(losses[left])
            rank[left[front]] = level
            left, level = left[~front], level + 1
        order = sorted(range(n), key=lambda i: (rank[i], losses[i][0]))
        keep = max(1, math.ceil(n / self.eta))
        return ids.index(trial_id) not in order[:keep]


Rule = DominanceRule | HalvingRule


class ParetoStopping:
    """Per-epoch records of every trial, and the decision to stop a dominated one.

    Decisions compare only records of the same epoch, because accuracy keeps rising with training:
    a trial at epoch 2 must not be judged against others' epoch-10 accuracy. Records are never
    forgotten, so trials that finished or were stopped still count as dominators at the epochs they
    reached. A decision is made when a trial reports; trials that report an epoch later are compared
    against it then, so the outcome does not depend on which trial happened to run first.
    """

    def __init__(self, rule: Rule | None = None, planned_epochs: int | None = None) -> None:
        if planned_epochs is not None and planned_epochs < 1:
            raise ValueError(f"planned_epochs must be at least 1, got {planned_epochs=}")
        self.rule = rule if rule is not None else DominanceRule()
        self.planned_epochs = planned_epochs
        self.stopped: dict[str, int] = {}  # trial id -> epoch it was stopped at
        self._records: dict[int, dict[str, _Record]] = {}  # epoch -> trial id -> record
        self._n_costs: int | None = None

    def record(self, trial_id: str, epoch: int, accuracy: float, costs: tuple[float, ...]) -> bool:
        """Record a trial's result at ``epoch``; True when that trial should stop now.

        A NaN accuracy is neither recorded nor stopped: the trainer reports its own errors, and a
        NaN can neither beat nor be beaten. A trial already stopped stays stopped. A trial at its
        last planned epoch is recorded (it still counts against others) but never stopped: its
        epochs are spent, and stopping it would only throw its result away.
        """
        costs = tuple(float(c) for c in costs)
        if self._n_costs is None:
            self._n_costs = len(costs)
        elif len(costs) != self._n_costs:
            raise ValueError(f"every record needs {self._n_costs} costs, got {costs=}")
        if trial_id in self.stopped:
            return True
        accuracy = float(accuracy)
        if math.isnan(accuracy):
            return False
        rule = self.rule
        if epoch < rule.min_epoch:
            return False  # never compared, so not kept
        at_epoch = self._records.setdefault(epoch, {})
        mine = _Record(accuracy, costs)
        at_epoch[trial_id] = mine  # a re-run of the same epoch (after a restore) replaces it
        if self.planned_epochs is not None and epoch >= self.planned_epochs:
            return False
        if rule.judged_at(epoch, self.planned_epochs) and rule.stops(trial_id, at_epoch):
            self.stopped[trial_id] = epoch
            return True
        return False

    def dominators(self, trial_id: str, epoch: int) -> int:
        """How many other trials dominate ``trial_id``'s record at ``epoch`` (0 if none kept);
        with the rule's tolerance and margin under a :class:`DominanceRule`, strictly otherwise."""
        rule = self.rule
        if not isinstance(rule, DominanceRule):
            rule = DominanceRule(cost_tolerance=0.0, margin=0.0)
        return rule.dominators(trial_id, self._records.get(epoch, {}))


class ParetoStoppingScheduler(FIFOScheduler):
    """Ray Tune scheduler around :class:`ParetoStopping`; runs trials in FIFO order.

    It reads the accuracy, the costs and the epoch from each intermediate result. Results that
    lack any of them (an error report) or say ``final: True`` (the summary the trainable sends after
    its last epoch) are not decisions and always continue. It needs no Tune ``metric``/``mode``:
    the trial's objectives are its own keys, so whatever Tune passes is kept only for reference.
    """

    # One decision per result: with buffered results a stopped trial would run on for a while.
    _supports_buffered_results = False

    def __init__(
        self,
        accuracy: str = "accuracy",
        costs: tuple[str, ...] = ("macs",),
        epoch: str = "epoch",
        rule: Rule = HalvingRule(),  # frozen: one shared default is safe
        planned_epochs: int | None = None,
    ) -> None:
        super().__init__()
        costs = tuple(costs)
        if not costs:
            raise ValueError(f"at least one cost key is needed, got {costs=}")
        self.accuracy_key = accuracy
        self.cost_keys = costs
        self.epoch_key = epoch
        self.rule = rule
        self.planned_epochs = planned_epochs
        self.pareto = ParetoStopping(rule, planned_epochs)
        self.stopped: dict[str, int] = {}  # trial id -> epoch it was stopped at
        self.tune_metric: str | None = None  # what Tune passed, for reference only
        self.tune_mode: str | None = None

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        """Accept Tune's metric/mode (and any spec) without letting them replace our keys.

        ``self.metric`` stays unset, so Tune's strict metric check does not demand the accuracy in
        results that legitimately lack it (a failed trial's error report).
        """
        self.tune_metric = metric
        self.tune_mode = mode
        return True

    def on_trial_result(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> str:
        """STOP when the trial is dominated at this epoch, otherwise CONTINUE."""
        if result.get("final"):
            return TrialScheduler.CONTINUE
        keys = (self.accuracy_key, self.epoch_key, *self.cost_keys)
        if any(result.get(k) is None for k in keys):
            return TrialScheduler.CONTINUE
        try:
            epoch = int(result[self.epoch_key])
            accuracy = float(result[self.accuracy_key])
            costs = tuple(float(result[k]) for k in self.cost_keys)
        except (TypeError, ValueError):
            return TrialScheduler.CONTINUE  # not numbers: not ours to judge
        if self.pareto.record(trial.trial_id, epoch, accuracy, costs):
            self.stopped.setdefault(trial.trial_id, epoch)
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def on_trial_complete(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> None:
        """Nothing to do: a finished trial's records keep counting as dominators."""

    def on_trial_remove(self, tune_controller: TuneController, trial: Trial) -> None:
        """Nothing to do: records of a removed trial are still valid observations."""

    def saved_epochs(self) -> int:
        """Epochs not trained thanks to stopping (0 when the planned length is unknown)."""
        if self.planned_epochs is None:
            return 0
        return sum(max(0, self.planned_epochs - e) for e in self.stopped.values())

    def debug_string(self) -> str:
        return (
            f"Using ParetoStopping ({self.accuracy_key} vs {', '.join(self.cost_keys)}; "
            f"{self.rule!r}): {len(self.stopped)} stopped, {self.saved_epochs()} epochs saved."
        )

    def save(self, checkpoint_path: str) -> None:
        """Pickle the state, so a resumed experiment keeps its records (as ASHA does)."""
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))
