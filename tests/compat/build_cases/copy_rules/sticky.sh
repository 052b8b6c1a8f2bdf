#!/bin/sh
echo sticky
