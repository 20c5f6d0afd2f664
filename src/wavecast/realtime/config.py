"""The real-time configuration: channel options per namespace, limits, timing and auth.

A channel named ``ns:rest`` belongs to the namespace ``ns``; a channel without ``:`` to the
default namespace. Options are Centrifugo's, with the same names and meanings, so that a
Centrifugo configuration carries over.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Literal

from ..exceptions import ConfigError

__all__ = [
    "DELTA_TYPES",
    "SLOW_CONSUMER_POLICIES",
    "ChannelOptions",
    "NodeConfig",
    "RecoveryMode",
    "SlowConsumerPolicy",
]

SlowConsumerPolicy = Literal["disconnect", "drop_oldest", "conflate"]
RecoveryMode = Literal["stream", "cache"]
SLOW_CONSUMER_POLICIES: tuple[SlowConsumerPolicy, ...] = ("disconnect", "drop_oldest", "conflate")
#: The delta encodings a namespace may allow, as Centrifugo names them.
DELTA_TYPES: tuple[str, ...] = ("fossil",)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ChannelOptions:
    """What clients may do in the channels of one namespace, and what the channels keep.

    Attributes:
        presence: keep who is subscribed; required for presence and join/leave.
        join_leave: send join and leave pushes to subscribers that ask for them.
        force_push_join_leave: send them to every subscriber.
        history_size: publications kept per channel; 0 keeps none.
        history_ttl: seconds publications are kept after the last one; 0 keeps none.
        force_positioning: check every subscriber's position in the stream.
        allow_recovery: let subscribers ask to recover missed publications.
        force_recovery: recover for every subscriber, asked or not.
        force_recovery_mode: ``stream`` recovers every publication a client missed;
            ``cache`` only the latest one, which a client gets whenever it resubscribes and
            on its first subscribe when it asks (centrifuge-js ``since: {}``): for channels
            whose every publication is the whole state (a board, a sensor's last reading).
            Centrifugo's option of the same name.
        auto_cache_recover: in ``cache`` mode, send the latest publication on every
            subscribe, asked or not (server-side subscriptions too); needs ``force_recovery``.
        allow_subscribe_for_client: any authenticated client may subscribe.
        allow_subscribe_for_anonymous: anonymous clients may subscribe too.
        allow_publish_for_subscriber: subscribers may publish.
        allow_publish_for_client: any authenticated client may publish.
        allow_publish_for_anonymous: anonymous clients may publish too.
        allow_presence_for_subscriber, allow_presence_for_client, allow_presence_for_anonymous:
            who may ask for presence and presence stats.
        allow_history_for_subscriber, allow_history_for_client, allow_history_for_anonymous:
            who may ask for history.
        allow_user_limited_channels: ``chat#42,43`` may be subscribed only by users 42 and 43.
        protected: only a subscription token, the connection token's ``channels`` claim or
            the ``on_subscribe`` hook grant a subscription; the ``allow_subscribe_*`` options
            are ignored.
        slow_consumer: what happens when a subscriber's outgoing queue is full:
            ``disconnect`` (code 3008, the client reconnects and recovers), ``drop_oldest``,
            or ``conflate`` (keep only the latest publication per conflation key).
        conflation_key_tag: with ``conflate``, the publication tag that names the key;
            without it, each channel is one key.
        subscribe_proxy_enabled, publish_proxy_enabled, sub_refresh_proxy_enabled: the
            standalone server asks the application's backend over HTTP (Centrifugo's event
            proxies, docs/topics/proxy.md) to subscribe, publish or refresh a subscription.
        subscribe_proxy_name, publish_proxy_name, sub_refresh_proxy_name: which proxy:
            ``default`` for ``[proxy.subscribe]`` (``publish``, ``sub_refresh``), another name
            for ``[proxies.<name>]``.
        allow_channel_compaction: let subscribers that ask (the SDKs do) receive the
            channel's publications, joins and leaves with a number, given in the subscribe
            reply, instead of its name: fewer bytes for long channel names. Centrifugo's
            option of the same name; JSON connections only (docs/protocol.md says why).
        allowed_delta_types: the delta encodings subscribers may ask for (``delta`` in the
            subscribe request): ``["fossil"]`` sends publications that the publisher marks
            ``delta`` as fossil deltas against the previous one each subscriber received.
        allow_tags_filter: subscribers may send a tags filter (``tf``) and receive only the
            publications whose tags match it.
    """

    presence: bool = False
    join_leave: bool = False
    force_push_join_leave: bool = False
    history_size: int = 0
    history_ttl: float = 0.0
    force_positioning: bool = False
    allow_recovery: bool = False
    force_recovery: bool = False
    force_recovery_mode: RecoveryMode = "stream"
    auto_cache_recover: bool = False
    allow_subscribe_for_client: bool = False
    allow_subscribe_for_anonymous: bool = False
    allow_publish_for_subscriber: bool = False
    allow_publish_for_client: bool = False
    allow_publish_for_anonymous: bool = False
    allow_presence_for_subscriber: bool = False
    allow_presence_for_client: bool = False
    allow_presence_for_anonymous: bool = False
    allow_history_for_subscriber: bool = False
    allow_history_for_client: bool = False
    allow_history_for_anonymous: bool = False
    allow_user_limited_channels: bool = False
    protected: bool = False
    slow_consumer: SlowConsumerPolicy = "disconnect"
    conflation_key_tag: str | None = None
    subscribe_proxy_enabled: bool = False
    subscribe_proxy_name: str = "default"
    publish_proxy_enabled: bool = False
    publish_proxy_name: str = "default"
    sub_refresh_proxy_enabled: bool = False
    sub_refresh_proxy_name: str = "default"
    allow_channel_compaction: bool = False
    allowed_delta_types: Sequence[str] = ()
    allow_tags_filter: bool = False

    def __post_init__(self) -> None:
        if self.history_size < 0 or self.history_ttl < 0:
            raise ConfigError("history_size and history_ttl must be 0 or more")
        if (self.history_size > 0) != (self.history_ttl > 0):
            raise ConfigError("history_size and history_ttl must be set together")
        if (self.force_recovery or self.allow_recovery or self.force_positioning) and not self.history_size:
            raise ConfigError("recovery and positioning need history: set history_size and history_ttl")
        if self.force_recovery_mode not in ("stream", "cache"):
            raise ConfigError(f"force_recovery_mode must be 'stream' or 'cache', got {self.force_recovery_mode!r}")
        if self.force_recovery_mode == "cache" and not (self.force_recovery or self.allow_recovery):
            raise ConfigError("force_recovery_mode = 'cache' needs recovery: set force_recovery or allow_recovery")
        if self.auto_cache_recover and not (self.force_recovery and self.force_recovery_mode == "cache"):
            raise ConfigError("auto_cache_recover needs force_recovery and force_recovery_mode = 'cache'")
        if (self.join_leave or self.force_push_join_leave) and not self.presence:
            raise ConfigError("join_leave needs presence: set presence = true")
        if self.slow_consumer not in SLOW_CONSUMER_POLICIES:
            raise ConfigError(
                f"slow_consumer must be one of {', '.join(SLOW_CONSUMER_POLICIES)}, got {self.slow_consumer!r}"
            )
        if self.slow_consumer != "disconnect" and (
            self.force_recovery or self.allow_recovery or self.force_positioning
        ):
            # Dropped publications would leave a positioned client at an offset it never
            # completed, and it could never recover them.
            raise ConfigError(
                f"slow_consumer = {self.slow_consumer!r} drops publications: it can't go with recovery or "
                "positioning; use slow_consumer = 'disconnect', whose clients reconnect and recover"
            )
        if self.conflation_key_tag is not None and self.slow_consumer != "conflate":
            raise ConfigError("conflation_key_tag needs slow_consumer = 'conflate'")
        unknown = [name for name in self.allowed_delta_types if name not in DELTA_TYPES]
        if unknown:
            raise ConfigError(f"allowed_delta_types may hold {', '.join(DELTA_TYPES)}, got {unknown[0]!r}")
        if self.allowed_delta_types and self.slow_consumer != "disconnect":
            # A delta is read against the previous publication: one dropped from the queue
            # would make every later one undecodable.
            raise ConfigError(
                f"slow_consumer = {self.slow_consumer!r} drops publications: it can't go with allowed_delta_types"
            )

    @property
    def history(self) -> bool:
        return self.history_size > 0 and self.history_ttl > 0


#: The limits of :class:`NodeConfig` that ``None`` turns off.
_CAN_BE_OFF = frozenset(
    {
        "client_queue_max_size",
        "client_channel_limit",
        "user_connection_limit",
        "channel_max_length",
        "client_message_size_limit",
        "command_rate",
        "publication_rate",
        "rpc_in_flight_limit",
        "history_max_limit",
        "idempotency_key_max_length",
        "token_jwks_max_response_size",
        "admission_connection_rate",
        "admission_connect_rate",
        "token_jwks_max_keys",
    }
)

#: The options of subscription tokens that need ``separate_subscription_token_config``.
_SUBSCRIPTION_TOKEN_OPTIONS = (
    "subscription_token_hmac_secret_key",
    "subscription_token_rsa_public_key",
    "subscription_token_ecdsa_public_key",
    "subscription_token_jwks_public_endpoint",
    "subscription_token_audience",
    "subscription_token_issuer",
)


def _check_endpoint(name: str, url: str) -> None:
    if not url:
        return
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an http:// or https:// URL, got {url!r}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class NodeConfig:
    """Everything a :class:`~wavecast.realtime.node.Node` needs, with finite defaults.

    Attributes:
        name: this node's name, reported to clients and in the admin page.
        channel: options of channels without a namespace.
        namespaces: options by namespace name.
        token_hmac_secret_key: HMAC secret that signs connection and subscription tokens (HS256).
        token_rsa_public_key: PEM public key for RS256 tokens.
        token_ecdsa_public_key: PEM public key for ES256 tokens.
        token_audience, token_issuer: claims that tokens must carry, when set.
        token_jwks_public_endpoint: an http:// or https:// URL of a JSON Web Key Set (RFC 7517);
            when set, every token is verified with its keys (RSA, EC and Ed25519/Ed448), named
            by the token's ``kid`` header, and the three keys above are not used, as in
            Centrifugo. See docs/topics/jwks.md.
        token_jwks_refresh_interval: seconds between two fetches of the set.
        token_jwks_min_refresh_interval: seconds at least between two fetches when tokens name
            keys that aren't in the set: one fetch per interval, however many such tokens come.
        token_jwks_timeout: seconds a fetch may take; the cached keys stay when it fails.
        token_jwks_max_response_size: bytes the set may have.
        token_jwks_max_keys: keys the set may hold.
        separate_subscription_token_config: verify subscription tokens with the
            ``subscription_token_*`` options below instead of the ``token_*`` ones.
        subscription_token_hmac_secret_key, subscription_token_rsa_public_key,
            subscription_token_ecdsa_public_key, subscription_token_jwks_public_endpoint,
            subscription_token_audience, subscription_token_issuer: the ``token_*`` options
            for subscription tokens, with ``separate_subscription_token_config``; the
            ``token_jwks_*`` limits apply to both endpoints.
        allow_anonymous_connect_without_token: accept connections without a token.
        client_ping_interval: seconds between the server's pings; 0 turns them off.
        client_pong_timeout: seconds a client has to answer a ping before 3012 "no pong".
        client_stale_close_delay: seconds a client has to send connect before 3502 "stale".
        client_expired_close_delay: seconds a client has to refresh an expired token.
        client_queue_max_size: bytes queued for a client that doesn't read fast enough,
            before its namespace's slow-consumer policy applies.
        client_channel_limit: channels one client may subscribe to (error 106 "limit exceeded" past it).
        user_connection_limit: connections one user may keep open (3504 "connection limit").
        channel_max_length: characters in a channel name (error 107 past it).
        client_message_size_limit: bytes in one WebSocket message from a client (close 1009).
        presence_ttl: seconds a presence entry lives without being refreshed.
        presence_update_interval: seconds between refreshes of a client's presence.
        command_rate, command_burst: commands per second per client, and the burst
            allowed above that rate, before error 111 "too many requests" (a ``send``,
            which has no reply to carry it, disconnects with 3013 "too many requests").
        publication_rate, publication_burst: the same for publish commands (error 111).
        rpc_in_flight_limit: RPC handlers running at once per client (error 106).
        history_max_limit: publications one history or recovery call returns at most.
        admission_connection_rate, admission_connection_burst: new WebSocket connections per
            second that the whole node admits, and the burst above that rate; past them the
            upgrade gets 503 (``wavecast serve``), which the SDKs retry after their backoff.
        admission_connect_rate, admission_connect_burst: ``connect`` commands per second that
            the whole node admits, on every transport, and the burst above that rate; past
            them a connect gets error 111 "too many requests" (temporary), which the SDKs
            retry after their backoff (:mod:`~wavecast.realtime.admission`).
        user_subscribe_to_personal: subscribe every authenticated client to its personal
            channel ``personal_channel_namespace:#user``.
        personal_channel_namespace: the namespace of personal channels.
        shutdown_timeout: seconds to wait for clients to close on shutdown.
        idempotent_result_ttl: seconds a publication's result is kept under its
            ``idempotency_key``: a repeat within them returns it and delivers nothing
            (Centrifugo's 5 minutes).
        idempotency_key_max_length: characters in an ``idempotency_key`` (error 107 past it).
        node_info_interval: seconds between two infos that this node sends to the others;
            a node is forgotten ``2 * node_info_interval + 1`` seconds after its last one
            (see :mod:`~wavecast.realtime.cluster`).
        survey_timeout: seconds the ``channels`` API waits for the other nodes to answer.

    Every limit on clients has a finite default, and ``None`` turns it off (see
    docs/topics/limits.md): those above from ``client_queue_max_size`` to
    ``admission_connect_burst``, except the presence timings; a rate of ``None`` turns its bucket
    off, whatever the burst. In a TOML file or a ``WAVECAST_CLIENT__*`` variable, ``false``
    stands for ``None``.
    """

    name: str = "wavecast"
    channel: ChannelOptions = dataclasses.field(default_factory=ChannelOptions)
    namespaces: Mapping[str, ChannelOptions] = dataclasses.field(default_factory=dict)
    token_hmac_secret_key: str = ""
    token_rsa_public_key: str = ""
    token_ecdsa_public_key: str = ""
    token_audience: str = ""
    token_issuer: str = ""
    token_jwks_public_endpoint: str = ""
    token_jwks_refresh_interval: float = 300.0
    token_jwks_min_refresh_interval: float = 10.0
    token_jwks_timeout: float = 5.0
    token_jwks_max_response_size: int | None = 2**20
    token_jwks_max_keys: int | None = 100
    separate_subscription_token_config: bool = False
    subscription_token_hmac_secret_key: str = ""
    subscription_token_rsa_public_key: str = ""
    subscription_token_ecdsa_public_key: str = ""
    subscription_token_jwks_public_endpoint: str = ""
    subscription_token_audience: str = ""
    subscription_token_issuer: str = ""
    allow_anonymous_connect_without_token: bool = False
    client_ping_interval: float = 25.0
    client_pong_timeout: float = 8.0
    client_stale_close_delay: float = 10.0
    client_expired_close_delay: float = 25.0
    client_queue_max_size: int | None = 2**20
    client_channel_limit: int | None = 128
    user_connection_limit: int | None = 100
    channel_max_length: int | None = 255
    client_message_size_limit: int | None = 65536
    presence_ttl: float = 60.0
    presence_update_interval: float = 27.0
    command_rate: float | None = 100.0
    command_burst: int = 200
    publication_rate: float | None = 50.0
    publication_burst: int = 100
    rpc_in_flight_limit: int | None = 16
    history_max_limit: int | None = 1000
    admission_connection_rate: float | None = 2000.0
    admission_connection_burst: int = 1000
    admission_connect_rate: float | None = 2000.0
    admission_connect_burst: int = 1000
    user_subscribe_to_personal: bool = False
    personal_channel_namespace: str = "personal"
    shutdown_timeout: float = 10.0
    idempotent_result_ttl: float = 300.0
    idempotency_key_max_length: int | None = 256
    node_info_interval: float = 3.0
    survey_timeout: float = 5.0
    allowed_origins: Sequence[str] | None = None

    def __post_init__(self) -> None:
        positive = (
            "client_queue_max_size",
            "client_channel_limit",
            "user_connection_limit",
            "channel_max_length",
            "client_message_size_limit",
            "presence_ttl",
            "presence_update_interval",
            "command_rate",
            "command_burst",
            "publication_rate",
            "publication_burst",
            "rpc_in_flight_limit",
            "history_max_limit",
            "admission_connection_rate",
            "admission_connection_burst",
            "admission_connect_rate",
            "admission_connect_burst",
            "client_pong_timeout",
            "client_stale_close_delay",
            "client_expired_close_delay",
            "shutdown_timeout",
            "idempotent_result_ttl",
            "idempotency_key_max_length",
            "node_info_interval",
            "survey_timeout",
            "token_jwks_refresh_interval",
            "token_jwks_min_refresh_interval",
            "token_jwks_timeout",
            "token_jwks_max_response_size",
            "token_jwks_max_keys",
        )
        for name in positive:
            value = getattr(self, name)
            if value is None and name in _CAN_BE_OFF:
                continue
            if value is None or value <= 0:
                off = " or None (off)" if name in _CAN_BE_OFF else ""
                raise ConfigError(f"{name} must be positive{off}, got {value!r}")
        _check_endpoint("token_jwks_public_endpoint", self.token_jwks_public_endpoint)
        _check_endpoint("subscription_token_jwks_public_endpoint", self.subscription_token_jwks_public_endpoint)
        if not self.separate_subscription_token_config:
            for name in _SUBSCRIPTION_TOKEN_OPTIONS:
                if getattr(self, name):
                    raise ConfigError(f"{name} needs separate_subscription_token_config = true")
        if self.client_ping_interval < 0:
            raise ConfigError("client_ping_interval must be 0 (off) or positive")
        if self.presence_update_interval >= self.presence_ttl:
            raise ConfigError("presence_update_interval must be shorter than presence_ttl")
        for namespace in self.namespaces:
            if not namespace or ":" in namespace or "#" in namespace:
                raise ConfigError(f"invalid namespace name: {namespace!r}")
        if self.user_subscribe_to_personal and self.personal_channel_namespace not in self.namespaces:
            raise ConfigError(
                f"user_subscribe_to_personal needs the namespace {self.personal_channel_namespace!r} in namespaces"
            )

    def channel_name_allowed(self, channel: str) -> bool:
        """Tell whether a client may name ``channel``: not empty, and within ``channel_max_length``."""
        return bool(channel) and (self.channel_max_length is None or len(channel) <= self.channel_max_length)

    def history_limit(self, requested: int) -> int | None:
        """How many publications a history call that asks for ``requested`` returns at most.

        A negative request asks for as many as allowed; ``None`` means all of them.
        """
        if requested < 0:
            return self.history_max_limit
        return requested if self.history_max_limit is None else min(requested, self.history_max_limit)

    def channel_options(self, channel: str) -> ChannelOptions | None:
        """Return the options of ``channel``'s namespace, or ``None`` if the namespace doesn't exist."""
        namespace, sep, _ = channel.partition(":")
        if not sep:
            return self.channel
        return self.namespaces.get(namespace)
