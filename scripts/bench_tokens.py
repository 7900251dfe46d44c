"""Benchmark the blind certification tokens of voter-held keys (RFC 9474, docs/PROTOCOL.md §16).

    .venv/bin/python scripts/bench_tokens.py [--tokens 300] [--bits 3072] [--json]

Prints CPU-µs per operation (process CPU time, best of three rounds, so a busy machine inflates
wall time but not these figures):
  * sign per token on the gateway — BlindSign with gmpy2 ``powmod_sec`` and CRT, plus the check
    against the public key (``gateway/certifier.py``); also Python's ``pow`` with CRT for contrast;
  * verify per ballot on a node — RSASSA-PSS-VERIFY with ``cryptography`` (``chain.blind.verify_token``,
    the public key cached as on a node), next to one Ed25519 verification with a fresh key;
  * the device's work — Blind and Finalize in Python (the browser does the same in JavaScript).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chain.blind import blind, finalize, token_message, verify_token  # noqa: E402
from chain.crypto import SigningKey, generate_rsa_key, verify  # noqa: E402
from gateway.certifier import Certifier  # noqa: E402


def cpu_us(action: Callable[[int], object], count: int) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for i in range(count):
            action(i)
        best = min(best, time.process_time() - started)
    return best / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--bits", type=int, default=3072)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    key = generate_rsa_key(args.bits)
    signer = Certifier(key)
    voters = [SigningKey.generate() for _ in range(args.tokens)]
    messages = [token_message("veche-bench", "c1", v.public_key) for v in voters]
    blinded = [blind(key.modulus, m) for m in messages]
    sign = cpu_us(lambda i: signer.blind_sign(blinded[i].blinded_msg), args.tokens)
    plain = min(args.tokens, 30)
    python_pow = cpu_us(lambda i: (pow(int.from_bytes(blinded[i].blinded_msg, "big") % key.p, key.dp, key.p),
                                   pow(int.from_bytes(blinded[i].blinded_msg, "big") % key.q, key.dq, key.q)), plain)
    answers = [signer.blind_sign(b.blinded_msg) for b in blinded]
    tokens = [finalize(key.modulus, m, a, b.inverse) for m, a, b in zip(messages, answers, blinded)]
    verify_token(key.modulus, "veche-bench", "c1", voters[0].public_key, tokens[0])   # warm the key cache
    check = cpu_us(lambda i: verify_token(key.modulus, "veche-bench", "c1", voters[i].public_key, tokens[i]),
                   args.tokens)
    signatures = [(v.public_key, v.sign(m)) for v, m in zip(voters, messages)]
    ed25519 = cpu_us(lambda i: verify(signatures[i][0], signatures[i][1], messages[i]), args.tokens)
    device_blind = cpu_us(lambda i: blind(key.modulus, messages[i]), args.tokens)
    device_finalize = cpu_us(lambda i: finalize(key.modulus, messages[i], answers[i], blinded[i].inverse), args.tokens)
    result = {
        "bits": args.bits, "tokens": args.tokens,
        "gateway_sign_us": round(sign, 1), "gateway_tokens_per_core_s": round(1e6 / sign),
        "python_pow_crt_sign_us": round(python_pow, 1),
        "node_verify_token_us": round(check, 1), "node_verify_ed25519_us": round(ed25519, 1),
        "device_blind_us": round(device_blind, 1), "device_finalize_us": round(device_finalize, 1),
        "load": os.getloadavg()[0],
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"RSA {args.bits} bits, {args.tokens} tokens (CPU time per operation, best of 3; load {result['load']:.1f})")
    print(f"  gateway BlindSign (gmpy2 powmod_sec, CRT, checked)  {sign:9.1f} µs   ≈ {1e6 / sign:.0f} tokens/s per core")
    print(f"  gateway BlindSign with Python pow (CRT)             {python_pow:9.1f} µs")
    print(f"  node token verification (cryptography, RSA-PSS)     {check:9.1f} µs per ballot")
    print(f"  node Ed25519 verification (fresh key), for scale    {ed25519:9.1f} µs")
    print(f"  device Blind / Finalize (Python)                    {device_blind:9.1f} / {device_finalize:.1f} µs")


if __name__ == "__main__":
    main()
