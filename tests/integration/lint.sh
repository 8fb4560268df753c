#!/bin/bash
# Determinism and layering rules over the sources (see tests/lint.sh).
exec sh "$AZL_TOP/tests/lint.sh"
