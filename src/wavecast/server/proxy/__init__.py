"""Centrifugo-compatible event proxies: ``wavecast serve`` asks the application's backend over
HTTP to connect, refresh, subscribe, publish, refresh subscriptions and answer RPCs
(docs/topics/proxy.md)."""

from __future__ import annotations

from .caller import HttpCaller, ProxyCallError
from .hooks import EventProxies
from .wire import ProxyAnswerError

__all__ = ["EventProxies", "HttpCaller", "ProxyAnswerError", "ProxyCallError"]
