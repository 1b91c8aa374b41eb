"""Compliance control references, named once and reused by rule metadata.

Frameworks: CIS Critical Security Controls v8 (Center for Internet Security), NIST SP 800-53 Revision 5
(Security and Privacy Controls), PCI DSS v4.0 (PCI Security Standards Council), ISO/IEC 27001:2022 Annex A,
and the AICPA 2017 Trust Services Criteria used in SOC 2 reports.
"""

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
