"""A department's voice bridge: telephony protocols in, one text turn per utterance to the department's
assistant, speech out. Standard library, aiohttp, numpy, pocketsphinx and espeak-ng only."""
