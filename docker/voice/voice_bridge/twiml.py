"""TwiML answers for the three modes."""

from __future__ import annotations

import xml.etree.ElementTree as ET


def _doc(response: ET.Element) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(response, encoding='unicode')


def _say(parent, text, language):
    say = ET.SubElement(parent, 'Say', language=language)
    say.text = text


def gather(text: str, action: str, language: str, hints=()) -> str:
    """Say ``text`` inside a speech/DTMF <Gather> that posts what it heard to ``action``; if the caller says
    nothing, ask again."""
    response = ET.Element('Response')
    attrs = {'input': 'speech dtmf', 'action': action, 'method': 'POST', 'language': language,
             'speechTimeout': 'auto', 'timeout': '5', 'actionOnEmptyResult': 'true'}
    if hints:
        attrs['hints'] = ', '.join(hints)
    _say(ET.SubElement(response, 'Gather', attrs), text, language)
    return _doc(response)


def relay(url: str, greeting: str, language: str, parameters: dict) -> str:
    response = ET.Element('Response')
    connect = ET.SubElement(response, 'Connect')
    relay_el = ET.SubElement(connect, 'ConversationRelay', url=url, welcomeGreeting=greeting, language=language,
                             interruptible='true', dtmfDetection='true')
    for name, value in parameters.items():
        ET.SubElement(relay_el, 'Parameter', name=name, value=value)
    return _doc(response)


def stream(url: str, parameters: dict) -> str:
    response = ET.Element('Response')
    connect = ET.SubElement(response, 'Connect')
    stream_el = ET.SubElement(connect, 'Stream', url=url)
    for name, value in parameters.items():
        ET.SubElement(stream_el, 'Parameter', name=name, value=value)
    return _doc(response)


def say_hangup(text: str, language: str) -> str:
    response = ET.Element('Response')
    _say(response, text, language)
    ET.SubElement(response, 'Hangup')
    return _doc(response)
