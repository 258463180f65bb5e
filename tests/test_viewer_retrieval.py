"""The viewer of an embedding model: the decoding process (Qt-free) sends the retrieval, the window
shows the top-k gallery thumbnails with their labels and similarities."""

import numpy as np
import pytest

from bci_stream.live.session import LiveConfig, LiveSpec
from bci_stream.retrieval.index import load_gallery
from bci_stream.sources.simulate import OutletConfig, phantom_pusher
from bci_stream.viewer.decoding_process import DecodingProcess
from bci_stream.viewer.main_window import MainWindow

pytest.importorskip("pytestqt")


def test_the_viewer_shows_an_embedding_model_s_retrieved_thumbnails(qtbot, tiny_embedding_model, phantom_gallery_file,
                                                                    tiny_phantom_config, stream_name):
    pusher = phantom_pusher(tiny_phantom_config, OutletConfig(name=stream_name, source_id=stream_name), isi=0.3).start()
    decoding = DecodingProcess(LiveSpec(model=str(tiny_embedding_model), providers="cpu", gallery_index=str(phantom_gallery_file),
                                        live=LiveConfig(stream=stream_name, markers=f"{stream_name}-markers", mode="event",
                                                        top_k=4)))
    try:
        assert decoding.info["qt_modules"] == [], "the decoding process imported Qt"
        gallery = load_gallery(phantom_gallery_file)
        assert decoding.state.class_names == gallery.classes()[1]  # the decisions' classes are the gallery's
        window = MainWindow(decoding.state, decoding.card.ch_names, decoding.card.sfreq, traces=decoding.traces,
                            session=decoding, class_ids=decoding.class_ids, card=decoding.card, gallery=decoding.gallery)
        qtbot.addWidget(window)
        qtbot.waitUntil(lambda: (decoding.state.snapshot().get("retrieval") or {}).get("ids") is not None, timeout=30000)
        window.refresh()
        shown = decoding.state.snapshot()["retrieval"]
        strip = window.retrieval_strip
        assert len(shown["ids"]) == 4 and len(strip.slots) == 4
        for (picture, caption), image_id, label, row in zip(strip.slots, shown["ids"], shown["labels"], shown["rows"]):
            assert image_id in caption.text() and label in caption.text()
            assert gallery.ids[row] == image_id and not picture.pixmap().isNull()
        first = strip.slots[0][0].pixmap().toImage()
        expected = gallery.thumbnails[shown["rows"][0]]
        colour = first.pixelColor(first.width() // 2, first.height() - 4)  # below the drawn text: the card colour
        assert np.allclose([colour.red(), colour.green(), colour.blue()], expected[-3, expected.shape[1] // 2], atol=12)
        window.close()
        assert decoding.join()["n_decisions"] >= 1
    finally:
        decoding.stop()
        decoding.join()
        pusher.close()
