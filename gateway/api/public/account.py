"""``/api/public/v1/account``: the wallet balance."""
from __future__ import annotations

from flask import g
from flask.views import MethodView

from gateway.api.surface import SurfaceBlueprint
from gateway.api.surfaces import PUBLIC
from gateway.models import Account

from . import envelope
from .schemas import AccountSchema

blp = SurfaceBlueprint(
    PUBLIC, "public-account", __name__, url_prefix="/account",
    description="The account's wallet balance.",
)


@blp.route("")
class AccountBalance(MethodView):
    @blp.requires("account:read")
    @blp.response(200, AccountSchema)
    def get(self):
        """Get the wallet balance

        The current balance, in the account's currency (INR for Indian accounts).
        """
        account = g.auth.account
        balance = Account.select(Account.balance).where(Account.id == account.id).scalar()
        balance = Account.balance.python_value(balance)
        return envelope.envelope("OK", data={"balance_inr": float(balance), "currency": account.currency})
