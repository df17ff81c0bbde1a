from alembic import context

from services.metrics.models import Base
from shared.db.migrations import run_env

run_env(context, Base.metadata)
