"""`python -m services.notifier`: run the notifier service."""

from services.common.http import main
from services.notifier.app import build_app
from services.notifier.settings import NotifierSettings

if __name__ == "__main__":
    main(build_app, NotifierSettings)
