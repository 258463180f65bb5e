import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from bci_stream.contract.classes import class_names, class_synsets, eegimagenet_classes
from bci_stream.contract.features import SpectrogramConfig
from bci_stream.contract.model_card import CARD_KEY, FORMAT_VERSION, ModelCard, ModelCardError


def make_card(**kw) -> ModelCard:
    base = dict(sfreq=1000.0, ch_names=["O1", "Oz", "O2"], class_ids=class_synsets(4), class_names=class_names(4),
                norm_mean=[[0.0] * 21] * 3, norm_std=[[1.0] * 21] * 3, evaluation={"top1": 0.5}, split="by-image")
    base.update(kw)
    return ModelCard(**base)


def identity_onnx(path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])
    model = helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y]))
    onnx.save(model, str(path))
    return path


def test_json_round_trip_keeps_every_field():
    card = make_card(spectrogram=SpectrogramConfig(nperseg=32, mode="log"), window_offset=0.05,
                     norm_mean=[[0.5] * 17] * 3, norm_std=[[2.0] * 17] * 3)
    again = ModelCard.from_json(card.to_json())
    assert again == card
    assert again.feature_shape() == (3, 17, card.spectrogram.n_frames(440))
    mean, std = again.norm_arrays()
    assert mean.shape == std.shape == (3, 17, 1)
    assert mean[0, 0, 0] == 0.5 and std[2, 16, 0] == 2.0


def test_onnx_metadata_round_trip(tmp_path):
    path = identity_onnx(tmp_path / "m.onnx")
    card = make_card()
    card.save_into_onnx(path)
    assert ModelCard.from_onnx(path) == card
    # writing again replaces, not duplicates
    card.save_into_onnx(path)
    keys = [p.key for p in onnx.load(str(path)).metadata_props]
    assert keys.count(CARD_KEY) == 1


def test_model_without_card_is_refused_by_name(tmp_path):
    path = identity_onnx(tmp_path / "bare.onnx")
    with pytest.raises(ModelCardError, match="no bci-stream model card"):
        ModelCard.from_onnx(path)


def test_newer_format_and_garbage_are_refused(tmp_path):
    data = json.loads(make_card().to_json())
    data["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(ModelCardError, match="newer"):
        ModelCard.from_json(json.dumps(data))
    with pytest.raises(ModelCardError, match="not valid JSON"):
        ModelCard.from_json("{nope")
    data["format_version"] = FORMAT_VERSION
    data["mystery"] = 1
    with pytest.raises(ModelCardError, match="unknown fields"):
        ModelCard.from_json(json.dumps(data))
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelCardError, match="not a readable ONNX"):
        ModelCard.from_onnx(corrupt)


def test_inconsistent_cards_are_refused():
    with pytest.raises(ModelCardError, match="class ids"):
        make_card(class_names=class_names(3))
    with pytest.raises(ModelCardError, match="twice"):
        make_card(ch_names=["O1", "O1", "O2"])
    with pytest.raises(ModelCardError, match="sfreq"):
        make_card(spectrogram=SpectrogramConfig(sfreq=500.0))
    with pytest.raises(ModelCardError, match="shape"):
        make_card(norm_mean=[[0.0] * 5] * 3).norm_arrays()


def test_the_40_classes_match_the_shared_table():
    classes = eegimagenet_classes()
    assert len(classes) == 40
    assert (classes[0].synset, classes[0].name) == ("n02389026", "sorrel")
    assert (classes[39].synset, classes[39].name) == ("n02124075", "Egyptian cat")
    assert len(set(c.synset for c in classes)) == 40
    assert np.all([c.synset.startswith("n") for c in classes])


def test_cards_without_the_feature_fields_load_as_the_magnitude_spectrogram_and_format_1_is_refused():
    """Version-2 cards written before feature_kind/mode/fmax/erp existed; format 1 came only from
    pre-release versions and is refused with the way out."""
    from bci_stream.contract.features import Features

    data = json.loads(make_card().to_json())
    for key in ("feature_kind", "erp"):
        data.pop(key)
    for key in ("mode", "fmax"):
        data["spectrogram"].pop(key)
    card = ModelCard.from_json(json.dumps(data))
    assert card.features() == Features("spectrogram", SpectrogramConfig(), card.erp)
    assert card.feature_shape() == (3, 21, 23) and card.spectrogram.mode == "magnitude"
    legacy_log = {**data, "spectrogram": {**data["spectrogram"], "log": True}}
    assert ModelCard.from_json(json.dumps(legacy_log)).spectrogram.mode == "log"
    with pytest.raises(ModelCardError, match="pre-release.*bci-train export"):
        ModelCard.from_json(json.dumps({**data, "format_version": 1}))


def test_erp_and_complex_cards_round_trip_with_their_shapes():
    from bci_stream.contract.features import ErpConfig

    erp = make_card(feature_kind="erp", erp=ErpConfig(decimate=10), norm_mean=[[0.0]] * 3, norm_std=[[1.0]] * 3)
    again = ModelCard.from_json(erp.to_json())
    assert again == erp and again.feature_shape() == (3, 1, (440 - 41) // 10 + 1)
    assert again.norm_arrays()[0].shape == (3, 1, 1)
    cplx = make_card(spectrogram=SpectrogramConfig(mode="complex", fmax=60.0), norm_mean=[[0.0] * 6] * 3,
                     norm_std=[[1.0] * 6] * 3)
    assert ModelCard.from_json(cplx.to_json()).feature_shape() == (3, 6, 23)
    with pytest.raises(ModelCardError, match="erp cutoff"):
        make_card(feature_kind="erp", erp=ErpConfig(cutoff=600.0), norm_mean=None, norm_std=None)
    with pytest.raises(ModelCardError, match="feature_kind"):
        make_card(feature_kind="wavelet")
