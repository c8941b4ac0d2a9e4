"""
The Temporal Python SDK's encryption sample codec (samples-python, encryption/codec.py), as a Python
or Java backend would run it, for the interoperability test in test/src/codec.test.ts.

encode/decode follow the sample line for line: metadata {"encoding": b"binary/encrypted",
"encryption-key-id": key id}, data = 12-byte random nonce + AESGCM(key).encrypt(nonce, serialized
Payload, None) (ciphertext followed by the 16-byte tag). The Payload protobuf (metadata map = field 1,
data = field 2) is written and read by hand here, so the script needs only `cryptography`.

Reads one JSON request on stdin, writes one JSON answer on stdout:
  {"op": "encode", "key": <base64>, "keyId": str, "value": <any JSON>}
      -> {"metadata": {name: base64}, "data": base64}           (a json/plain payload, sealed)
  {"op": "decode", "key": <base64>, "keyId": str, "metadata": {name: base64}, "data": base64}
      -> {"metadata": {name: base64}, "value": <any JSON>}      (the opened payload)
"""
import base64
import json
import os
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def serialize_payload(metadata: dict, data: bytes) -> bytes:
    """temporal.api.common.v1.Payload.SerializeToString()."""
    out = b""
    for name, value in metadata.items():
        out += _field(1, _field(1, name.encode()) + _field(2, value))
    return out + _field(2, data)


def _read_fields(buf: bytes):
    i = 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        if key & 7 != 2:
            raise ValueError("unexpected wire type")
        length, i = _read_varint(buf, i)
        yield key >> 3, buf[i : i + length]
        i += length


def _read_varint(buf: bytes, i: int):
    shift = result = 0
    while True:
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, i
        shift += 7


def parse_payload(buf: bytes):
    """temporal.api.common.v1.Payload.FromString()."""
    metadata, data = {}, b""
    for number, value in _read_fields(buf):
        if number == 1:
            entry = dict(_read_fields(value))
            metadata[entry.get(1, b"").decode()] = entry.get(2, b"")
        elif number == 2:
            data = value
    return metadata, data


class EncryptionCodec:
    def __init__(self, key_id: str, key: bytes) -> None:
        self.key_id = key_id
        self.encryptor = AESGCM(key)

    def encode(self, payload: bytes):
        return {"encoding": b"binary/encrypted", "encryption-key-id": self.key_id.encode()}, self.encrypt(payload)

    def decode(self, metadata: dict, data: bytes) -> bytes:
        if metadata.get("encoding", b"").decode() != "binary/encrypted":
            raise ValueError("not an encrypted payload")
        key_id = metadata.get("encryption-key-id", b"").decode()
        if key_id != self.key_id:
            raise ValueError(f"Unrecognized key ID {key_id}. Current key ID is {self.key_id}.")
        return self.decrypt(data)

    def encrypt(self, data: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self.encryptor.encrypt(nonce, data, None)

    def decrypt(self, data: bytes) -> bytes:
        return self.encryptor.decrypt(data[:12], data[12:], None)


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def main() -> None:
    request = json.load(sys.stdin)
    codec = EncryptionCodec(request["keyId"], base64.b64decode(request["key"]))
    if request["op"] == "encode":
        plain = serialize_payload({"encoding": b"json/plain"}, json.dumps(request["value"]).encode())
        metadata, data = codec.encode(plain)
        answer = {"metadata": {k: b64(v) for k, v in metadata.items()}, "data": b64(data)}
    else:
        metadata = {k: base64.b64decode(v) for k, v in request["metadata"].items()}
        opened_metadata, opened_data = parse_payload(codec.decode(metadata, base64.b64decode(request["data"])))
        answer = {"metadata": {k: b64(v) for k, v in opened_metadata.items()}, "value": json.loads(opened_data)}
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
