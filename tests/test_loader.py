"""`coreseg.load` picks a backend that can run the model here, or says why
none can and what works instead."""

import sys

import pytest

import coreseg
from coreseg import demo
from coreseg.running import loader


def test_core_ml_off_macos_says_what_works_instead(monkeypatch):
    monkeypatch.delenv(loader.FAKE_COREML, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(coreseg.BackendUnavailableError, match="macOS 13 or later only.*load the .onnx file"):
        coreseg.load(demo.model_path("mlpackage"))


@pytest.mark.parametrize("version, runs", [("12.7.4", False), ("13.0", True), ("14.5", True), ("15.1.1", True)])
def test_the_macos_version_is_checked_before_core_ml_is_chosen(monkeypatch, version, runs):
    # An old Mac would meet "unrecognized selector" inside Core ML: refused
    # first, naming the version and the backend that works.
    monkeypatch.delenv(loader.FAKE_COREML, raising=False)
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(loader.platform, "mac_ver", lambda: (version, ("", "", ""), "arm64"))
    why = loader._coreml_unavailable()
    if runs:
        assert why is None or "no Core ML backend" in why  # a Linux build has no _coreml: that is all
    else:
        assert f"this Mac runs macOS {version}" in why and "backend='onnx'" in why
        with pytest.raises(coreseg.BackendUnavailableError, match=f"macOS {version}"):
            coreseg.load(demo.model_path("mlpackage"))
        # "demo" then picks the ONNX twin.
        assert coreseg.load("demo").backend == "onnx"
