"""Tasks: config -> components -> render -> outputs. Importing this package registers every task in :data:`TASKS`."""

from paramviz.tasks import robustness, stylize, visualize  # noqa: F401  (importing registers the tasks)
from paramviz.tasks.base import TASKS, SharedWork, Task, seeded_backbone

__all__ = ["TASKS", "SharedWork", "Task", "seeded_backbone"]
