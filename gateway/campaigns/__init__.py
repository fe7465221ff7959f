"""Saved campaigns of the public calling API, and the account audio library they play.

``audio``  convert an uploaded clip to what FreeSWITCH plays (8 kHz mono 16-bit WAV) and
           store it under the media directory.
``saved``  create and change saved campaigns; the rules of triggering one for a number.
"""
