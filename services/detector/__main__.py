"""`python -m services.detector`: run the detector service."""

from services.common.http import main
from services.detector.app import build_app
from services.detector.settings import DetectorSettings

if __name__ == "__main__":
    main(build_app, DetectorSettings)
