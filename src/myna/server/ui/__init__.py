"""The web page `myna serve` shows at `/`: static files (plain HTML, CSS and JavaScript in static/) and
the small API only the page needs (what the server offers, and MP3 from a WAV the page made)."""
