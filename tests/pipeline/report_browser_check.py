#!/usr/bin/env python3
"""Opens a cliphba report.html in a real headless browser (Debian's chromium, driven by
chromedriver through python3-selenium) and checks that it renders as a reader would see it:

- the page finishes loading and logs no browser error (console or network);
- it has the report's title and at least one section heading;
- every <img> has loaded and decoded (complete, naturalWidth and naturalHeight > 0) and is drawn
  with a non-zero size;
- every figure has a caption that says which objects its numbers come from (held-out,
  cross-validated, or in-sample: the in/out-of-sample label of issue 17).

A full-page screenshot is written beside the report (report.browser.png) for a person to look at.
usage: report_browser_check.py REPORT.html [--min-figures N]
Exit 0 when every check passes, 1 when one fails (each failure printed), 2 when the browser
cannot be started (a set-up error: scripts/setup.sh installs chromium, chromium-driver and
python3-selenium).
"""
import argparse
import os
import sys

LABELS = ("held-out", "heldout", "cross-validated", "cross_validated", "in-sample", "insample",
          "out-of-sample", "out of sample")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("--min-figures", type=int, default=1)
    a = ap.parse_args()
    path = os.path.abspath(a.report)
    if not os.path.isfile(path):
        print(f"report_browser_check: {path}: no such file", file=sys.stderr)
        return 2
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        opts = webdriver.ChromeOptions()
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,1000", "--allow-file-access-from-files"):
            opts.add_argument(arg)
        opts.binary_location = "/usr/bin/chromium"
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    except Exception as e:  # noqa: BLE001 -- any start-up failure is a set-up error
        print(f"report_browser_check: cannot start headless chromium: {e}", file=sys.stderr)
        return 2
    failures = []
    try:
        driver.set_page_load_timeout(60)
        driver.get("file://" + path)
        state = driver.execute_script("return document.readyState")
        if state != "complete":
            failures.append(f"document.readyState is {state!r}, not 'complete'")
        title = driver.title
        if "cliphba report" not in title:
            failures.append(f"title {title!r} is not the report's")
        headings = driver.execute_script(
            "return Array.from(document.querySelectorAll('h1,h2')).map(h => h.textContent)")
        if not headings:
            failures.append("no section heading rendered")
        images = driver.execute_script(
            "return Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, "
            "w: i.naturalWidth, h: i.naturalHeight, cw: i.clientWidth, ch: i.clientHeight}))")
        if len(images) < a.min_figures:
            failures.append(f"{len(images)} images, expected at least {a.min_figures}")
        for i, im in enumerate(images):
            if not (im["complete"] and im["w"] > 0 and im["h"] > 0):
                failures.append(f"image {i} ({im['alt']!r}) did not load: {im}")
            elif im["cw"] <= 0 or im["ch"] <= 0:
                failures.append(f"image {i} ({im['alt']!r}) is drawn with size 0: {im}")
        captions = driver.execute_script(
            "return Array.from(document.querySelectorAll('figure')).map(f => "
            "{const c = f.querySelector('figcaption'); return c ? c.textContent : null})")
        for i, c in enumerate(captions):
            if not c:
                failures.append(f"figure {i} has no caption")
            elif not any(l in c.lower() for l in LABELS):
                failures.append(f"figure {i} caption {c!r} does not say which objects "
                                "(held-out / cross-validated / in-sample)")
        for entry in driver.get_log("browser"):
            if entry.get("level") == "SEVERE":
                failures.append(f"browser error: {entry.get('message')}")
        shot = os.path.splitext(path)[0] + ".browser.png"
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1280, min(max(int(height), 600), 16000))
        driver.save_screenshot(shot)
        print(f"report_browser_check: {len(images)} images, {len(captions)} figures, "
              f"{len(headings)} headings; screenshot {shot}")
    finally:
        driver.quit()
    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    if not failures:
        print("report_browser_check: pass")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
