<?php

declare(strict_types=1);

namespace App;

/** Where the app runs, for the JSON answer. */
final class Info
{
    /** @return array<string, string> */
    public static function runtime(): array
    {
        return ['host' => (string) gethostname(), 'php' => PHP_VERSION, 'sapi' => PHP_SAPI];
    }
}
