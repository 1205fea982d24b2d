"""roles/demo: the demo's curated baseline (in the repository), its capture on the data hosts and the
reset deploy that returns every data service to it (run on the controller)."""

from gpuaas.groups import CONTROLLER
from gpuaas.role import Phase, Role, Section
from roles.demo.settings import DemoSettings

ROLE = Role(
    __name__,
    title="Demo baseline",
    applies_to=(CONTROLLER,),
    phase=Phase.CONTROLLER,
    order=30,
    settings=DemoSettings,
    section=Section.ROLES,
    deploy="deploy:demo_reset",
    checks="checks:problems",
)
