"""`python -m services.intake`: run the intake service (the public API)."""

from services.common.http import main
from services.intake.app import build_app
from services.intake.settings import IntakeSettings

if __name__ == "__main__":
    main(build_app, IntakeSettings)
