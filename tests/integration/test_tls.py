"""Optional TLS, on real servers: an edge agent forwards to an HTTPS collector it trusts
through a CA bundle, the API asks for client certificates (mutual TLS) when configured,
and no token appears in any log line written meanwhile (DEBUG, every logger)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from api.app import create_app as create_api
from api.store import Store
from collector.agent.main import Agent
from collector.agent.settings import AgentSettings
from collector.app import create_app as create_collector
from collector.publish import Publisher
from collector.settings import CollectorSettings
from steward import topics as T
from steward.auth import Authenticator, new_token
from steward.broker import free_port
from steward.bus.producer import Producer
from steward.tls import ServerTls, http_client
from tests.support import Served

NOW = dt.datetime.now(dt.UTC)


def _write(path: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
    path.with_suffix(".key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _cert(name: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
          *, usage: ExtendedKeyUsageOID | None = None) -> tuple[ec.EllipticCurvePrivateKey,
                                                                 x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - dt.timedelta(minutes=5))
               .not_valid_after(NOW + dt.timedelta(days=1)))
    if issuer is None:  # the CA
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), True)
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), False)
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            False)
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_key.public_key()), False)
    builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                                    False)
    return key, builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """ca.pem, server.pem/.key (127.0.0.1, localhost), client.pem/.key, all from one CA."""
    out = tmp_path_factory.mktemp("pki")
    ca_key, ca = _cert("steward test CA", None)
    _write(out / "ca", ca_key, ca)
    for name, usage in (("server", ExtendedKeyUsageOID.SERVER_AUTH),
                        ("client", ExtendedKeyUsageOID.CLIENT_AUTH)):
        _write(out / name, *_cert(f"steward {name}", (ca.subject, ca_key), usage=usage))
    return out


def record(i: int) -> dict:
    return {"id": f"tls-{i}", "model": "m", "version": "1", "site": "store-7", "tier": "edge",
            "ts": NOW.isoformat(), "latency_ms": 5}


def test_agent_forwards_to_an_https_collector_and_no_token_is_logged(
        pki, kafka, services, tmp_path, topic_reader, wait, caplog):
    caplog.set_level(logging.DEBUG)
    token, spec = new_token("edge-store-7", ["ingest"], "store-7")
    tls = ServerTls(certfile=pki / "server.pem", keyfile=pki / "server.key")
    settings = CollectorSettings(kafka=kafka, tokens=[spec], tls=tls)
    producer = Producer(kafka)
    services.append(producer)
    app = create_collector(settings, Publisher(producer, kafka.topic_prefix, 100,
                                               max_message_bytes=kafka.max_message_bytes),
                           CollectorRegistry(), ready=lambda: True)
    collector = Served(app, **tls.uvicorn_kwargs())
    services.append(collector)
    assert collector.url.startswith("https://")

    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{collector.url}/healthz")  # not trusted without the CA bundle
    with pytest.raises(httpx.HTTPError):
        httpx.get(collector.url.replace("https", "http") + "/healthz")  # no plain HTTP

    agent_settings = AgentSettings(collector_url=collector.url, token=SecretStr(token),
                                   ca_bundle=pki / "ca.pem", port=free_port(),
                                   spool_dir=tmp_path / "spool", backoff_base_s=0.05,
                                   backoff_cap_s=0.3)
    agent = Agent(agent_settings, CollectorRegistry()).start()
    services.append(agent)
    served = Served(agent.app, agent_settings.port)
    services.append(served)
    assert httpx.post(f"{served.url}/v1/inferences",
                      json=[record(i) for i in range(3)]).status_code == 200
    topic = T.INFERENCE.full(kafka.topic_prefix)
    wait(lambda: topic_reader(topic), 30, "the records on Kafka, through HTTPS")

    refused = http_client(timeout=10, token=SecretStr(token + "x"), ca_bundle=pki / "ca.pem")
    with refused:
        assert refused.post(f"{collector.url}/v1/inferences", json=[record(9)]).status_code == 401
    assert caplog.records, "nothing was logged: the check below would prove nothing"
    assert token not in caplog.text
    for text in (repr(agent_settings), str(agent_settings), agent_settings.model_dump_json()):
        assert token not in text


def test_api_with_client_certificates(pki, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    token, spec = new_token("dashboard", ["read"], None)
    store = Store(tmp_path / "steward.duckdb")
    tls = ServerTls(certfile=pki / "server.pem", keyfile=pki / "server.key",
                    client_ca=pki / "ca.pem")
    api = Served(create_api(store, CollectorRegistry(), {}, auth=Authenticator([spec])),
                 **tls.uvicorn_kwargs())
    try:
        trusted = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        with pytest.raises(httpx.HTTPError):  # no client certificate: the handshake fails
            httpx.get(f"{api.url}/events", verify=trusted,
                      headers={"authorization": f"Bearer {token}"})
        trusted.load_cert_chain(pki / "client.pem", pki / "client.key")
        with httpx.Client(verify=trusted) as client:
            assert client.get(f"{api.url}/events").status_code == 401  # TLS is not the token
            ok = client.get(f"{api.url}/events", headers={"authorization": f"Bearer {token}"})
            assert ok.status_code == 200 and ok.json()["events"] == []
    finally:
        api.stop()
        store.close()
    assert token not in caplog.text


def test_tls_settings_come_in_pairs(pki):
    with pytest.raises(ValueError, match="go together"):
        ServerTls(certfile=pki / "server.pem")
    with pytest.raises(ValueError, match=r"needs tls\.certfile"):
        ServerTls(client_ca=pki / "ca.pem")
    with pytest.raises(ValueError, match="does not exist"):
        ServerTls(certfile=pki / "nope.pem", keyfile=pki / "server.key")
    assert ServerTls().uvicorn_kwargs() == {} and ServerTls().scheme == "http"
