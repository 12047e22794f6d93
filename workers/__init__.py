"""I/O lives here: the broker, actors, the Redis store, notifiers, the clock, the CLI."""

from .app import ActorDispatch, App, DramatiqSender, build_app, setup_dramatiq
from .clock import Clock, SystemClock, VirtualClock
from .engine import QUEUES, Engine
from .keys import Keys
from .notifier import FileNotifier, MemoryNotifier, Notifier, build_notifier
from .process import Processor
from .report import build_report
from .settings import Settings
from .store import CommitResult, RedisStore, Store

__all__ = [
    "QUEUES",
    "ActorDispatch",
    "App",
    "Clock",
    "CommitResult",
    "DramatiqSender",
    "Engine",
    "FileNotifier",
    "Keys",
    "MemoryNotifier",
    "Notifier",
    "Processor",
    "RedisStore",
    "Settings",
    "Store",
    "SystemClock",
    "VirtualClock",
    "build_app",
    "build_notifier",
    "build_report",
    "setup_dramatiq",
]
