/**
 * The two built-in corpus grammars. `shapes`: descriptions, actions, questions and short stories
 * about coloured shapes, in the same lowercase closed vocabulary as the image captions, so a text
 * model pre-trained on it already knows the caption words. `recipes`: cooking recipes, steps and
 * tips, a different domain with digits and units (corpus B of MaskLLM's mask-transfer experiment).
 */
import { defineGrammar, type Grammar } from './grammar.js';

export const SHAPES_GRAMMAR: Grammar = defineGrammar('shapes', 'LINE', {
  LINE: '[4] <DESC> . | [3] <ACTION> . | [2] <QA> | [2] <STORY> | [1] <SCENE> .',

  SHAPE: 'circle | square | triangle | cross | ring | star | diamond | heart',
  SHAPES: 'circles | squares | triangles | crosses | rings | stars | diamonds | hearts',
  COLOUR: '[11] <COLOUR_C> | [2] orange',
  COLOUR_C: '[2] red | [2] green | [2] blue | [2] yellow | purple | pink | white | black | grey | brown | cyan',
  SIZE: 'big | small | tiny | large | huge | little',
  NUM: 'two | three | four | five | six',

  NP: '[2] the <SHAPE> | [3] the <COLOUR> <SHAPE> | [2] the <SIZE> <SHAPE> | [2] the <SIZE> <COLOUR> <SHAPE>',
  NP_A: '[2] a <SHAPE> | [3] a <COLOUR_C> <SHAPE> | an orange <SHAPE> | [2] a <SIZE> <SHAPE> | [2] a <SIZE> <COLOUR> <SHAPE>',
  NP_PL: '[2] <NUM> <SHAPES> | [2] <NUM> <COLOUR> <SHAPES> | <NUM> <SIZE> <SHAPES> | some <SHAPES> | many <COLOUR> <SHAPES>',
  NP_THE_PL: '[2] the <SHAPES> | [2] the <COLOUR> <SHAPES> | the <NUM> <SHAPES> | all the <SHAPES>',

  REL: 'above | below | to the left of | to the right of | next to | inside | near | far from | on top of | under | behind',
  PLACE:
    'in the top left corner | in the top right corner | in the bottom left corner | in the bottom right corner | ' +
    '[2] in the middle | at the top | at the bottom | on the left | on the right',
  DIR: '[2] left | [2] right | [2] up | [2] down | away | to the corner | to the middle | across the picture',
  ADVERB: 'slowly | quickly | again | twice | very slowly | very quickly | all day | once more',

  DESC:
    '[4] <NP> is <REL> <NP> | [3] there is <NP_A> <PLACE> | [2] there are <NP_PL> <PLACE> | [2] <NP> is <COLOUR> | ' +
    '<NP> is <SIZE> | [2] <NP> is <PLACE> | the picture shows <NP_A> and <NP_A> | <NP_A> sits <REL> <NP_A> | ' +
    '<NP_THE_PL> are <REL> <NP>',
  ACTION:
    '[3] <NP> <VERB_S> | [2] <NP> <VERB_S> <ADVERB> | <NP> <VERB_S> and then <VERB_S> | [2] <NP_THE_PL> <VERB_P> | ' +
    '<NP_THE_PL> <VERB_P> <ADVERB>',
  VERB_S:
    '[3] moves <DIR> | jumps | spins | rolls <DIR> | grows | shrinks | turns <COLOUR> | slides <DIR> | bounces | ' +
    'hides behind <NP> | moves <REL> <NP> | disappears | falls down | floats up | follows <NP> | touches <NP>',
  VERB_P: '[2] move <DIR> | jump | spin | grow | shrink | turn <COLOUR> | dance together | line up <PLACE> | swap places',

  QA:
    '[3] q: where is <NP> ? a: it is <PLACE> . | [3] q: what colour is the <SHAPE> ? a: it is <COLOUR> . | ' +
    '[2] q: how many <SHAPES> are there ? a: there are <NUM> . | [2] q: what is <REL> <NP> ? a: <NP_A> . | ' +
    'q: is <NP> <SIZE> ? a: <YESNO> . | q: what does <NP> do ? a: it <VERB_S> .',
  YESNO: 'yes | no',

  SCENE: '<DESC> and <DESC> | <DESC> , but <DESC> | first <ACTION> , then <ACTION>',

  STORY: 'once upon a time there was <NP_A> . <BODY> the end .',
  BODY: '[3] <EVENT> . <BODY> | [2] <EVENT> .',
  EVENT:
    '[3] it <VERB_S> | [2] then it <VERB_S> | [2] one day it met <NP_A> | they played <PLACE> | it was very happy | ' +
    'it felt <FEELING> | [2] <NP> <VERB_S> | suddenly <NP_A> appeared <PLACE> | everyone <VERB_P> | they became friends',
  FEELING: 'happy | sad | sleepy | brave | lonely | curious',
});

export const RECIPES_GRAMMAR: Grammar = defineGrammar('recipes', 'LINE', {
  LINE: '[3] <RECIPE> | [3] step <STEP_NUM> : <STEP> . | [1] tip : <TIP> .',

  RECIPE: 'recipe : <DISH> . you will need <INGREDIENTS> . first , <STEP> . <MORE> serves <NUM> .',
  MORE: '[3] <CONNECT> <STEP> . <MORE> | [2] finally , <STEP> .',
  CONNECT: 'then , | next , | after that , | meanwhile , | now',

  DISH: '[2] <DISH_ADJ> <MAIN> <KIND> | [2] <MAIN> <KIND> | <MAIN> <KIND> with <SIDE>',
  DISH_ADJ: 'creamy | spicy | simple | quick | warm | fresh | rustic | golden | sweet | smoky | hearty',
  MAIN: 'tomato | mushroom | chicken | lentil | pumpkin | potato | carrot | bean | lemon | apple | chocolate | onion | cheese | spinach',
  KIND: 'soup | stew | curry | pie | salad | cake | bread | risotto | pasta | tart | omelette | pancakes | crumble',
  SIDE: 'rice | crusty bread | green salad | roasted potatoes | green beans | yoghurt',

  INGREDIENTS: '[2] <ITEM> , <ITEM> and <ITEM> | <ITEM> and <ITEM> | <ITEM> , <ITEM> , <ITEM> and <ITEM>',
  ITEM: '[3] <QTY> <STUFF> | [2] <NUM> <COUNTABLE>',
  QTY:
    '[2] <GRAMS> grams of | <NUM> cups of | a cup of | half a cup of | <NUM> tablespoons of | a teaspoon of | ' +
    'a pinch of | a handful of | <ML> ml of',
  GRAMS: '50 | 100 | 150 | 200 | 250 | 300 | 400 | 500',
  ML: '100 | 150 | 200 | 250 | 500 | 750',
  STUFF:
    'flour | sugar | butter | milk | rice | olive oil | salt | black pepper | cream | grated cheese | water | stock | ' +
    'honey | lemon juice | chopped parsley | grated ginger | oats | cocoa powder',
  COUNTABLE: 'eggs | onions | carrots | potatoes | tomatoes | cloves of garlic | apples | lemons | mushrooms',
  NUM: 'two | three | four | five | six',

  STEP:
    '[4] <VERB> the <THING> <HOW> | [2] preheat the oven to <TEMP> degrees | [2] bake for <TIME> <UNTIL> | ' +
    'bring the <THING> to the boil | [2] simmer for <TIME> <UNTIL> | season with salt and pepper | ' +
    'let it rest for <TIME> | [2] serve <SERVE> | stir in the <THING> and cook for <TIME>',
  VERB: 'chop | slice | dice | peel | grate | mix | stir | whisk | fold in | add | melt | fry | roast | boil | pour in | wash',
  THING: '[3] <STUFF> | [2] <COUNTABLE> | rest of the <STUFF> | <COUNTABLE> and the <STUFF>',
  HOW:
    '[2] ε | in a large bowl | in a saucepan | in a frying pan | on a baking tray | <ADVERB> | [2] until <STATE> | ' +
    'for <TIME> | over a low heat | over a high heat',
  ADVERB: 'slowly | gently | carefully | quickly | well | finely',
  STATE: 'soft | golden | smooth | combined | fragrant | thick | tender | golden brown | bubbling | melted',
  UNTIL: '[2] ε | until <STATE>',
  TIME: '[3] <MINUTES> minutes | one hour | half an hour | <NUM> minutes | a few minutes',
  MINUTES: '5 | 10 | 15 | 20 | 25 | 30 | 40 | 45',
  TEMP: '160 | 170 | 180 | 200 | 220',
  SERVE: 'hot | warm | cold | with <SIDE> | straight away | with a slice of lemon | on warm plates',
  STEP_NUM: '1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9',

  TIP:
    'you can use <STUFF> instead of <STUFF> | this <KIND> keeps for <NUM> days in the fridge | ' +
    'do not <VERB> the <THING> too much | add more <STUFF> if you like | the <KIND> tastes even better the next day',
});

/** Built-in grammars by name. */
export const GRAMMARS: Readonly<Record<'shapes' | 'recipes', Grammar>> = { shapes: SHAPES_GRAMMAR, recipes: RECIPES_GRAMMAR };
export type GrammarName = keyof typeof GRAMMARS;
