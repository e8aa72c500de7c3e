"""The wallet service: team wallets: pricing, all-or-nothing reservations, per-file settlement."""
