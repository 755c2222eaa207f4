"""`ivr db init [--demo] | seed | orders | show`: the shop database (schema, demo data, listings for testers).

Only `init` and `seed` create a database; commands that read refuse a SQLite file that does not exist (a
mistyped `--db` or data dir gives a clear error instead of a new, empty shop).

`ivr db orders --json` prints one JSON object per line (JSON Lines), newest order first:
  {"order_id", "phone", "phone_tail", "customer_phone", "status", "total_cents", "created_at", "item", "fixed"}
where `phone` is the order's contact phone (caller-id / last-four verification) and `fixed` describes the
well-known demo orders (null for the others).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from ivr.cli import UserError

# The values of ivr.services.shop.api.OrderStatus, for --status without importing the shop (SQLAlchemy) before
# the arguments are read (tests/test_db_cli.py checks that the two agree)
STATUSES = ["unpaid", "paid", "shipped", "in_transit", "delivered", "returned", "refunded", "cancelled"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("db", help="shop database: init, seed demo data, list orders")
    dsub = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)

    def add(name: str, help_: str, func) -> argparse.ArgumentParser:
        sp = dsub.add_parser(name, help=help_)
        sp.add_argument("--db", metavar="URL", help="SQLAlchemy URL (default: settings db_url / data_dir/ivr.db)")
        sp.set_defaults(func=func)
        return sp

    sp = add("init", "create or upgrade the schema to the newest revision", _init)
    sp.add_argument("--demo", action="store_true", help="also seed the demo shop when the shop has no orders")
    sp = add("seed", "fill the shop with the deterministic demo shop", _seed)
    sp.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    sp.add_argument("--today", help="YYYY-MM-DD the demo dates are relative to (default: today)")
    sp.add_argument("--replace", action="store_true", help="wipe existing shop data first (required if not empty)")
    sp = add("orders", "list orders (id, phone, status) for scripting test calls", _orders)
    sp.add_argument("--json", action="store_true", help="JSON Lines output, one order per line")
    sp.add_argument("--limit", type=int, default=20, help="at most N orders (0 = all; default 20)")
    sp.add_argument("--status", choices=STATUSES, help="only orders in this state")
    sp.add_argument("--phone", help="only orders of this phone (order contact or customer)")
    sp = add("show", "print one order as the bot sees it (JSON)", _show)
    sp.add_argument("order_id")


def _url(args: argparse.Namespace) -> str:
    if args.db:
        return args.db
    from ivr.config import get_settings

    return get_settings().database_url


def _ensure(url: str, *, create: bool = False) -> str:
    """Schema at head; unless ``create``, a SQLite database must exist already (reading never creates one)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    if not create:
        try:
            u = make_url(url)
        except Exception:
            raise UserError(f"not a database URL: {_safe(url)}") from None
        if u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:") \
                and not Path(u.database).is_file():
            raise UserError(f"no database at {u.database} (mistyped --db or data_dir?); "
                            "create one with `ivr db init` (add --demo for the demo shop)")
    from ivr.services.migrate import SchemaError, ensure_schema  # (Alembic: after the checks above)

    try:
        return ensure_schema(url)
    except SchemaError as e:
        raise UserError(str(e)) from None
    except SQLAlchemyError as e:
        detail = " ".join(str(getattr(e, "orig", None) or e).split())
        raise UserError(f"cannot open database {_safe(url)}: {detail}") from None


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<invalid url>"


def _init(args: argparse.Namespace) -> int:
    url = _url(args)
    rev = _ensure(url, create=True)
    print(f"database ready: {_safe(url)} (schema revision {rev})")
    if args.demo:
        from ivr.services.shop import seed_if_empty

        counts = seed_if_empty(url)
        print("seeded the demo shop: " + ", ".join(f"{n} {t}" for t, n in counts.items()) if counts
              else "the shop has orders already: demo data not added")
    return 0


def _seed(args: argparse.Namespace) -> int:
    today = None
    if args.today:
        try:
            today = date.fromisoformat(args.today)
        except ValueError:
            raise UserError(f"--today must be YYYY-MM-DD, got {args.today!r}") from None
    from ivr.services.shop import SqlShop, seed_demo

    url = _url(args)
    _ensure(url, create=True)
    existing = SqlShop(url).count_orders()
    if existing and not args.replace:
        raise UserError(f"the shop already has {existing} orders; add --replace to wipe them and reseed")
    counts = seed_demo(url, seed=args.seed, today=today)
    print(f"seeded demo shop (seed {args.seed}) into {_safe(url)}: "
          + ", ".join(f"{n} {t}" for t, n in counts.items()))
    return 0


def _orders(args: argparse.Namespace) -> int:
    if args.limit < 0:
        raise UserError("--limit must be 0 (all) or more")
    url = _url(args)
    _ensure(url)
    from sqlalchemy import or_, select

    from ivr.services.db import session_factory
    from ivr.services.shop.models import Customer, Order, OrderItemRow
    from ivr.services.shop.seed import FIXED_ORDERS, SHOP_TZ
    from ivr.services.shop.store import normalize_phone

    stmt = (select(Order.order_id, Order.phone, Customer.phone, Order.status, Order.total_cents, Order.created_at)
            .join(Customer).order_by(Order.created_at.desc(), Order.order_id))
    if args.status:
        stmt = stmt.where(Order.status == args.status)
    if args.phone:
        p = normalize_phone(args.phone)
        stmt = stmt.where(or_(Order.phone == p, Customer.phone == p))
    if args.limit:
        stmt = stmt.limit(args.limit)
    with session_factory(url)() as s:
        rows = s.execute(stmt).all()
        first_item = dict(s.execute(select(OrderItemRow.order_id, OrderItemRow.name)
                                    .where(OrderItemRow.order_id.in_([r[0] for r in rows]))
                                    .order_by(OrderItemRow.id.desc())).all())
    out = sys.stdout
    for oid, phone, cphone, status, total, created in rows:
        rec = {"order_id": oid, "phone": phone, "phone_tail": phone[-4:], "customer_phone": cphone,
               "status": status, "total_cents": total, "created_at": created.isoformat(),
               "item": first_item.get(oid, ""), "fixed": FIXED_ORDERS.get(oid)}
        if args.json:
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
        else:
            out.write(f"{oid}  {phone}  {status:<10} {total / 100:>10.2f}  {created.astimezone(SHOP_TZ):%Y-%m-%d}  {rec['item']}\n")
    if not rows and not args.json:
        print("(no matching orders)", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace) -> int:
    url = _url(args)
    _ensure(url)
    from ivr.services.shop import SqlShop
    from ivr.services.shop.api import OrderSnapshot
    from ivr.services.shop.wire import to_json

    snap = SqlShop(url).get_order(args.order_id)
    if snap is None:
        raise UserError(f"no order {args.order_id!r}")
    print(json.dumps(to_json(snap, OrderSnapshot), ensure_ascii=False, indent=2))
    return 0
