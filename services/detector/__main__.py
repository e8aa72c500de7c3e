"""`python -m services.detector`: run the detector service."""

from services.common.http import main
from services.common.settings import CommonSettings
from services.detector.app import build_app

if __name__ == "__main__":
    main(build_app, CommonSettings)
