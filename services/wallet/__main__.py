"""`python -m services.wallet`: run the wallet service."""

from services.common.http import main
from services.wallet.app import build_app
from services.wallet.settings import WalletSettings

if __name__ == "__main__":
    main(build_app, WalletSettings)
