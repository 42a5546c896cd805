<?php

declare(strict_types=1);

namespace GoldenPath\Greeting;

/** Says hello. */
final class Greeter
{
    public function __construct(private string $from)
    {
    }

    public function hello(): string
    {
        return 'Hello from ' . $this->from;
    }

    public function shout(): string
    {
        return mb_strtoupper($this->hello());
    }
}
