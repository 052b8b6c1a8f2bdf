#!/bin/sh
echo setgid
