"""`python -m services.intake`: run the intake service (the public API)."""

from services.common.http import main
from services.common.settings import CommonSettings
from services.intake.app import build_app

if __name__ == "__main__":
    main(build_app, CommonSettings)
