"""`flask` commands: migrate the database, seed demo data, run the scheduler process."""

from __future__ import annotations

import click
from alembic import command
from alembic.config import Config
from flask import Flask, current_app

from marketplace.config import PROJECT_ROOT
from marketplace.db import session_scope, utcnow


def alembic_config(database_url: str) -> Config:
    """Alembic settings pointing at our migrations and the given database."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


@click.command("migrate")
def migrate_command() -> None:
    """Bring the database schema to the newest revision."""
    command.upgrade(alembic_config(current_app.config["DATABASE_URL"]), "head")
    click.echo("database is at the newest revision")


@click.command("seed-demo")
def seed_demo_command() -> None:
    """Create the demo cluster (once) and print its logins."""
    from marketplace.demo import DEMO_PASSWORD, login_lines, seed_demo

    with session_scope(current_app.extensions["engine"]) as session:
        created = seed_demo(session, current_app.config["SECRET_KEY"], utcnow())
        click.echo("demo data created" if created else "demo data already present")
        click.echo(f"demo logins (password for all: {DEMO_PASSWORD}), "
                   "each with its firm, role and language:")
        for line in login_lines(session):
            click.echo(line)


@click.command("scheduler")
def scheduler_command() -> None:
    """Run the periodic tasks; start two for a hot standby (only the leader runs tasks)."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    from marketplace.config import ConfigurationError, require_message_queue
    from marketplace.scheduling.runner import add_tasks

    try:
        require_message_queue(current_app.config, "The scheduler process")
    except ConfigurationError as error:
        raise click.ClickException(str(error)) from None
    scheduler = BlockingScheduler(timezone="UTC")
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # a LocalProxy
    leadership = add_tasks(scheduler, app)
    click.echo(f"scheduler {leadership.holder} running "
               f"({'leader' if leadership.is_leader else 'standing by'}); Ctrl-C stops it",
               err=True)
    try:
        scheduler.start()
    finally:
        leadership.release()


def init_cli(app: Flask) -> None:
    """Register the commands on the app."""
    for cmd in (migrate_command, seed_demo_command, scheduler_command):
        app.cli.add_command(cmd)
