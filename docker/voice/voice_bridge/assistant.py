"""One HTTP POST per turn to the department's assistant (its n8n webhook)."""

from __future__ import annotations

import asyncio

import aiohttp

SECRET_HEADER = 'X-Federation-Voice-Secret'


class AssistantError(Exception):
    """The assistant gave no usable answer."""


class AssistantTimeout(AssistantError):
    pass


class AssistantUnavailable(AssistantError):
    pass


class AssistantBadAnswer(AssistantError):
    pass


class Assistant:
    def __init__(self, url: str, secret: str, timeout: float, department: str):
        self.url = url
        self._secret = secret
        self.timeout = timeout
        self.department = department
        self._session: aiohttp.ClientSession | None = None

    async def close(self):
        if self._session is not None:
            await self._session.close()

    async def hang_up(self, call_id: str, caller: str = '', mode: str = '') -> bool:
        """Tell the assistant that call ``call_id`` ended (``input: hangup``, no text), so it can close the
        conversation. Best effort: returns whether the assistant took it; never raises."""
        if not call_id:
            return False
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        body = {'call_id': call_id, 'text': '', 'from': caller, 'mode': mode, 'input': 'hangup',
                'department': self.department}
        try:
            async with self._session.post(self.url, json=body, headers={SECRET_HEADER: self._secret}) as resp:
                await resp.read()
                return resp.status == 200
        except (asyncio.TimeoutError, aiohttp.ClientError):
            return False

    async def ask(self, call_id: str, text: str, caller: str = '', mode: str = '', source: str = 'speech') -> str:
        """The assistant's answer to ``text`` in call ``call_id``."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        body = {'call_id': call_id, 'text': text, 'from': caller, 'mode': mode, 'input': source,
                'department': self.department}
        where = "the assistant of department '%s' at %s" % (self.department, self.url)
        try:
            async with self._session.post(self.url, json=body, headers={SECRET_HEADER: self._secret}) as resp:
                if resp.status != 200:
                    raise AssistantUnavailable('%s answered HTTP %d' % (where, resp.status))
                try:
                    data = await resp.json(content_type=None)
                except ValueError:
                    raise AssistantBadAnswer('%s answered something that is not JSON' % where)
        except asyncio.TimeoutError:
            raise AssistantTimeout('%s did not answer within %.1f s' % (where, self.timeout))
        except aiohttp.ClientError as exc:
            raise AssistantUnavailable('%s cannot be reached: %s' % (where, exc))
        answer = data.get('text') if isinstance(data, dict) else None
        if not isinstance(answer, str) or not answer.strip():
            raise AssistantBadAnswer('%s answered without a "text" string' % where)
        return answer.strip()
