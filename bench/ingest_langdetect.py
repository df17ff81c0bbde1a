# ruff: noqa: RUF001 - real text in other scripts (full-width and Greek letters) is what is measured.
"""Chooses ingest's language detector: accuracy on short public posts and time per call.

Run: ``make bench-langdetect``. lingua is not a project dependency; to compare it, install it somewhere and
put it on PYTHONPATH (``uv pip install --target /tmp/lingua lingua-language-detector``); else it is skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# Short posts like agencies receive, written for this benchmark (labelled by hand).
SAMPLES: list[tuple[str, str]] = [
    ("en", "Is the M4 closed tonight? I need to get to the airport"),
    ("en", "The bins on our street were not collected again this week"),
    ("en", "Thanks for fixing the pothole so quickly!"),
    ("en", "When does the pool reopen after the storm?"),
    ("en", "bus 370 late again, third time this week"),
    ("fr", "Est-ce que la route est fermée ce soir ?"),
    ("fr", "Merci pour votre aide, tout fonctionne maintenant"),
    ("fr", "Le bus n'est jamais venu ce matin"),
    ("fr", "Pourquoi les poubelles ne sont pas ramassées ?"),
    ("de", "Ist die Straße heute Abend gesperrt?"),
    ("de", "Der Zug hatte wieder eine Stunde Verspätung"),
    ("de", "Vielen Dank für die schnelle Antwort"),
    ("de", "Wann öffnet das Bürgeramt wieder?"),
    ("es", "¿La carretera está cerrada esta noche?"),
    ("es", "Gracias por arreglar la calle tan rápido"),
    ("es", "El autobús nunca llegó esta mañana"),
    ("es", "¿Cuándo abre de nuevo la piscina?"),
    ("it", "La strada è chiusa stasera?"),
    ("it", "Grazie per la risposta veloce"),
    ("it", "Il treno è in ritardo di nuovo"),
    ("pt", "A estrada está fechada hoje à noite?"),
    ("pt", "Obrigado pela ajuda, agora funciona"),
    ("nl", "Is de weg vanavond afgesloten?"),
    ("nl", "Bedankt voor het snelle antwoord"),
    ("zh", "今晚高速公路关闭吗？"),
    ("zh", "谢谢你们的快速回复"),
    ("ja", "今夜は道路が閉鎖されていますか？"),
    ("ar", "هل الطريق مغلق الليلة؟"),
    ("vi", "Đường có bị đóng tối nay không?"),
    ("ko", "오늘 밤 도로가 폐쇄되나요?"),
    ("el", "Είναι κλειστός ο δρόμος απόψε;"),
    ("hi", "क्या आज रात सड़क बंद है?"),
]


def _py3langid() -> Callable[[str], str]:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return lambda text: str(identifier.classify(text)[0])


def _lingua() -> Callable[[str], str] | None:
    try:
        from lingua import LanguageDetectorBuilder
    except ImportError:
        return None
    detector = LanguageDetectorBuilder.from_all_languages().build()

    def detect(text: str) -> str:
        lang = detector.detect_language_of(text)
        return lang.iso_code_639_1.name.lower() if lang is not None else "und"

    return detect


def measure(name: str, make: Callable[[], Callable[[str], str] | None]) -> None:
    started = time.perf_counter()
    detect = make()
    load_s = time.perf_counter() - started
    if detect is None:
        print(f"| {name} | not installed | | | |")
        return
    correct = sum(detect(text) == lang for lang, text in SAMPLES)
    rounds = 20
    started = time.perf_counter()
    for _ in range(rounds):
        for _lang, text in SAMPLES:
            detect(text)
    per_call_us = (time.perf_counter() - started) / (rounds * len(SAMPLES)) * 1e6
    print(f"| {name} | {correct}/{len(SAMPLES)} | {per_call_us:.0f} µs | {load_s:.2f} s |")


def main() -> None:
    print("| detector | correct | time per call | load time |")
    print("|---|---|---|---|")
    measure("py3langid (normalised probabilities)", _py3langid)
    measure("lingua (all languages, high accuracy)", _lingua)


if __name__ == "__main__":
    main()
