"""Compliance control references (REFERENCE.md section 4), named once and reused by rule metadata."""

from __future__ import annotations

from auditor.model import ControlRef

CIS = "CIS Controls v8"
NIST = "NIST SP 800-53 rev5"
PCI = "PCI DSS 4.0"
ISO = "ISO/IEC 27001:2022"
SOC2 = "SOC 2"
FRAMEWORKS = (CIS, NIST, PCI, ISO, SOC2)


def refs(*pairs: tuple[str, str]) -> tuple[ControlRef, ...]:
    return tuple(ControlRef(framework, control) for framework, control in pairs)
