import pytest

from distilbert_catalog.precision import cpu_has_native_bf16, resolve_precision


def test_auto_picks_bf16_only_with_native_cpu_support():
    assert resolve_precision("auto", "cpu", flags=frozenset({"avx2", "fma"})) == "fp32"
    assert resolve_precision("auto", "cpu", flags=frozenset({"avx512f", "avx512_bf16"})) == "bf16"
    assert resolve_precision("auto", "cpu", flags=frozenset({"amx_bf16", "amx_tile"})) == "bf16"


def test_explicit_choice_wins_and_typos_fail():
    assert resolve_precision("fp32", "cpu", flags=frozenset({"amx_bf16"})) == "fp32"
    assert resolve_precision("bf16", "cpu", flags=frozenset()) == "bf16"
    with pytest.raises(ValueError, match="auto, fp32, bf16"):
        resolve_precision("fp16", "cpu")


def test_this_machine_reading_is_consistent():
    expected = "bf16" if cpu_has_native_bf16() else "fp32"
    assert resolve_precision("auto", "cpu") == expected
