"""Replenishment policy: service targets, safety stock, reorder points, order quantities, proposals, exceptions.

- ``ml.policy.inventory_math``: the inventory arithmetic (plain numpy/scipy, no I/O): loss functions, EOQ, order
  quantities, reorder points per service rule, the classical baseline, evaluation on lead-time-demand samples.
- ``ml.policy.run_policy``: the whole policy for every product x location of a ``LeadTimeDemand``, beside the
  classical baseline, with purchase/transfer proposals and ranked exceptions (``PolicyRun``).
- ``ml.policy.set_proposal_status``: a planner's decision on a proposal (append-only ``ml.proposal_decisions``).
"""

from ml.policy.config import PolicyConfig
from ml.policy.proposals import set_proposal_status
from ml.policy.run import POLICY_MODEL_VERSION, PolicyRun, run_policy, write_policy_run

__all__ = ["POLICY_MODEL_VERSION", "PolicyConfig", "PolicyRun", "run_policy", "set_proposal_status",
           "write_policy_run"]
